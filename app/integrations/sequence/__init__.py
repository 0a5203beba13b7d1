"""GetSequence, the bank-side rail: its Platform API v1 (accounts and transfers) and a
local sandbox of it.

- ``client``: ``SequenceClient``, the async adapter (spec §12), retrying through tenacity;
- ``schemas``: the objects it returns (§10), amounts in cents;
- ``errors``: the typed failures (§4, §12.2), each saying whether the answer is definite;
- ``budget``: the per-key request budget shared by a key's clients (§12.4);
- ``sandbox``: a fake Sequence served over HTTP for tests and local runs (§13).

The spec is ``PLATFORM_API.md`` (GetSequence Platform API v1, specification digest); the
section numbers quoted in docstrings are its own.
"""

from app.integrations.sequence.client import SequenceClient
from app.integrations.sequence.errors import (
    SequenceAmbiguous,
    SequenceAuthError,
    SequenceError,
    SequenceIdempotencyMismatch,
    SequenceInvalid,
    SequenceMaxAmountError,
    SequenceNotFound,
    SequencePermissionError,
    SequenceRateLimited,
    SequenceServerError,
    SequenceUnavailable,
)
from app.integrations.sequence.schemas import (
    TERMINAL_STATUSES,
    Account,
    AccountSummary,
    Balance,
    Transfer,
    TransferPage,
    TransferParty,
)

__all__ = [
    "TERMINAL_STATUSES",
    "Account",
    "AccountSummary",
    "Balance",
    "SequenceAmbiguous",
    "SequenceAuthError",
    "SequenceClient",
    "SequenceError",
    "SequenceIdempotencyMismatch",
    "SequenceInvalid",
    "SequenceMaxAmountError",
    "SequenceNotFound",
    "SequencePermissionError",
    "SequenceRateLimited",
    "SequenceServerError",
    "SequenceUnavailable",
    "Transfer",
    "TransferPage",
    "TransferParty",
]
