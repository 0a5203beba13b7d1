from app.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed


class InvalidPayment(ValidationFailed):
    code = "invalid_payment"


class CurrencyMismatch(AppError):
    status_code = 400
    code = "currency_mismatch"


class RecipientNotFound(NotFound):
    code = "recipient_not_found"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"


class ProductOutOfStock(Conflict):
    code = "product_out_of_stock"


class PaymentRefused(AppError):
    """Not raised: describes a refusal that is recorded and returned (see service)."""

    status_code = 400
    code = "payment_refused"


class InsufficientBalance(PaymentRefused):
    code = "insufficient_funds"


class LimitExceeded(PaymentRefused):
    code = "limit_exceeded"


class AgentInactive(PaymentRefused, Forbidden):
    status_code = 403
    code = "agent_inactive"


class WalletFrozen(PaymentRefused, Forbidden):
    status_code = 403
    code = "wallet_frozen"
