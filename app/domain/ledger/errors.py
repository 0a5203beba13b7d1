from typing import Final

from app.errors import AppError, Conflict, NotFound, ValidationFailed


class LedgerError(AppError):
    """Base of ledger refusals."""


class UnbalancedEntry(ValidationFailed):
    code = "unbalanced_entry"


class InvalidPosting(ValidationFailed):
    code = "invalid_posting"


class AccountNotFound(NotFound):
    code = "account_not_found"


class CurrencyMismatch(ValidationFailed):
    code = "currency_mismatch"


#: The message of ``InsufficientFunds``, with ``{have}`` and ``{need}`` as decimal text:
#: also filled in by SQL (``money_text``) where a statement records the refusal itself.
INSUFFICIENT_FUNDS_TEXT: Final = "Insufficient balance: have {have}, need {need}"


class InsufficientFunds(AppError):
    status_code = 400
    code = "insufficient_funds"
    title = "Insufficient funds"

    def __init__(self, detail: str, *, account_id: str, available: int, needed: int) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.available = available
        self.needed = needed


class BalanceOverflow(Conflict):
    """An account cannot hold more: one of its balance rows would leave the BIGINT range
    (about 9.2e18 minor units). Nothing was posted."""

    code = "balance_limit_reached"


class EntryReferenceConflict(Conflict):
    """The reference was already used by an entry with different postings."""

    code = "entry_reference_conflict"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class HoldNotPending(Conflict):
    code = "hold_not_pending"


class CaptureExceedsHold(ValidationFailed):
    code = "capture_exceeds_hold"
