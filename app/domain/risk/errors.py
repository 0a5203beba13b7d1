from app.errors import NotFound, ValidationFailed


class ServiceNotFound(NotFound):
    """Not a merchant or wallet of the caller's owner (to authorize), or not an authorized
    service of the agent (to revoke)."""

    code = "service_not_found"


class InvalidService(ValidationFailed):
    code = "invalid_service"
