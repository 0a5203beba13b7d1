"""All ORM tables, imported here so Alembic sees every one through ``Base.metadata``."""

from app.models.base import Base
from app.models.ledger import (
    AccountKind,
    EntryKind,
    HoldStatus,
    JournalEntry,
    LedgerAccount,
    LedgerBalance,
    LedgerHold,
    Posting,
)

__all__ = [
    "AccountKind",
    "Base",
    "EntryKind",
    "HoldStatus",
    "JournalEntry",
    "LedgerAccount",
    "LedgerBalance",
    "LedgerHold",
    "Posting",
]
