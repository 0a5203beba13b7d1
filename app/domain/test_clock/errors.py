from app.errors import AppError


class TestClockUnavailable(AppError):
    """The test clock exists in sandbox mode only: a live server answers as for any path
    it does not serve."""

    __test__ = False  # not a pytest class, whatever its name
    status_code = 404
    code = "not_found"
    title = "Not found"


class ClockOutOfRange(AppError):
    status_code = 422
    code = "clock_out_of_range"
    title = "Unprocessable content"
