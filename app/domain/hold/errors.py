from app.errors import Conflict, NotFound, ValidationFailed


class HoldNotFound(NotFound):
    code = "hold_not_found"


class HoldNotPending(Conflict):
    code = "hold_not_pending"


class CaptureExceedsHold(ValidationFailed):
    code = "capture_exceeds_hold"
