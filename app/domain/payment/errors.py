from app.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed


class InvalidPayment(ValidationFailed):
    """A malformed payment request (raised: nothing is recorded)."""

    code = "invalid_payment"


class RecipientNotFound(NotFound):
    code = "recipient_not_found"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"


class PaymentRefused(AppError):
    """Not raised: a refusal of an attempt whose payer and payee are known. It is recorded
    (a failed transaction, audit ``payment_failed``, event ``payment.failed``; for a hold,
    audit ``hold_failed``) and returned (see service)."""

    status_code = 400
    code = "payment_refused"


class InsufficientBalance(PaymentRefused):
    code = "insufficient_funds"


class LimitExceeded(PaymentRefused):
    code = "limit_exceeded"


class CurrencyMismatch(PaymentRefused):
    """The amount's currency is not that of the payer's wallet, of the payee's, or of the
    product paid for."""

    status_code = 400
    code = "currency_mismatch"


class ProductOutOfStock(PaymentRefused, Conflict):
    status_code = 409
    code = "product_out_of_stock"


class ProductMerchantMismatch(PaymentRefused, ValidationFailed):
    """A product is paid only to its own merchant: the ``merchant_id`` or
    ``recipient_wallet_id`` named (``param``) is another payee."""

    status_code = 422
    code = "product_merchant_mismatch"


class OwnWalletPayment(PaymentRefused, InvalidPayment):
    """An agent paying its own wallet (same code as other invalid payments)."""

    status_code = 422
    code = "invalid_payment"


class AgentInactive(PaymentRefused, Forbidden):
    status_code = 403
    code = "agent_inactive"


class WalletFrozen(PaymentRefused, Forbidden):
    status_code = 403
    code = "wallet_frozen"


class AgentFlagged(PaymentRefused, Forbidden):
    """The agent is flagged for review: it moves no money until unflagged (seed 003)."""

    status_code = 403
    code = "agent_flagged"


class RecipientNotAuthorized(PaymentRefused, Forbidden):
    """The agent enforces its authorized services and the payee is not one of them."""

    status_code = 403
    code = "merchant_not_authorized"


class RiskDenied(PaymentRefused, Forbidden):
    """The attempt's risk score reached ``PURSER_RISK_BLOCK_SCORE``."""

    status_code = 403
    code = "risk_denied"


class AgentFlaggedHold(Forbidden):
    """A flagged agent's hold cannot be captured (raised, nothing recorded or moved)."""

    code = "agent_flagged"
