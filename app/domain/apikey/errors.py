from typing import ClassVar

from app.errors import Forbidden, Unauthorized


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}

    def __init__(self) -> None:
        # One message for every reason (missing, malformed, unknown, revoked, expired):
        # a caller learns nothing about which keys exist.
        super().__init__("Invalid API key")


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
