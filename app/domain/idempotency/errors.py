from app.errors import AppError, Conflict, Forbidden, ValidationFailed


class InvalidIdempotencyKey(AppError):
    status_code = 400
    code = "invalid_idempotency_key"


class ConflictingIdempotencyKeys(InvalidIdempotencyKey):
    code = "conflicting_idempotency_keys"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


class IdempotencyKeyForbidden(Forbidden):
    """The key's stored response belongs to a request the caller could not have made."""

    code = "idempotency_key_forbidden"
