"""All ORM tables, imported here so Alembic sees every one through ``Base.metadata``."""

from app.models.agent import Agent
from app.models.apikey import ApiKey
from app.models.base import Base
from app.models.catalog import Product
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
from app.models.merchant import Merchant
from app.models.wallet import VirtualCard, Wallet

__all__ = [
    "AccountKind",
    "Agent",
    "ApiKey",
    "Base",
    "EntryKind",
    "HoldStatus",
    "JournalEntry",
    "LedgerAccount",
    "LedgerBalance",
    "LedgerHold",
    "Merchant",
    "Posting",
    "Product",
    "VirtualCard",
    "Wallet",
]
