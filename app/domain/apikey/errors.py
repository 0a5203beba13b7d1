from typing import Any, ClassVar

from app.errors import Forbidden, Unauthorized


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    default_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}

    def __init__(self, *, missing: bool = False, unreadable: bool = False) -> None:
        # One message for every reason a presented key fails (malformed, unknown, revoked,
        # expired): a caller learns nothing about which keys exist. A request that sent no
        # key at all is told so, and how to send one; so is one whose Authorization header
        # is not a Bearer credential (``Basic …``, empty), which names no key at all.
        if unreadable:
            super().__init__(
                "Authorization must be `Bearer sk_test_…` (or send the key as X-API-Key alone)",
                param="Authorization",
            )
            return
        super().__init__(
            "Missing API key: send `Authorization: Bearer sk_test_…` (or `X-API-Key`)"
            if missing
            else "Invalid API key"
        )


class InsufficientScope(Forbidden):
    code = "insufficient_scope"


class KeyCeilingExceeded(Forbidden):
    """Not raised: a key asked for a key beyond its own powers. The refusal is recorded in
    the audit trail and returned (raising would roll the record back with the request).

    ``beyond`` maps each request field that went past the ceiling to what was asked:
    ``scopes`` (the scopes the calling key lacks), ``agent_id``, ``tier``, ``expires_at``
    (ISO 8601).
    """

    code = "key_ceiling_exceeded"

    def __init__(self, detail: str, *, beyond: dict[str, Any]) -> None:
        super().__init__(detail, param=next(iter(beyond), None))
        self.beyond = beyond
