from app.errors import AppError, Conflict, ValidationFailed


class InvalidIdempotencyKey(AppError):
    status_code = 400
    code = "invalid_idempotency_key"


class ConflictingIdempotencyKeys(InvalidIdempotencyKey):
    code = "conflicting_idempotency_keys"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
