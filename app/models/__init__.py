"""All ORM tables, imported here so Alembic sees every one through ``Base.metadata``."""

from app.models.agent import Agent, AgentRecipient, AgentService, RiskBucket
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
from app.models.owner import OwnerControl
from app.models.payment import (
    AuditRecord,
    FeeSchedule,
    IdempotencyRecord,
    OutboxEvent,
    SpendCounter,
    Transaction,
)
from app.models.payment_flow import Hold, PaymentRequest, Refund
from app.models.sequence import SequenceDailyUsage, SequenceSettings, SequenceTransfer
from app.models.wallet import VirtualCard, Wallet
from app.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AccountKind",
    "Agent",
    "AgentRecipient",
    "AgentService",
    "ApiKey",
    "AuditRecord",
    "Base",
    "EntryKind",
    "FeeSchedule",
    "Hold",
    "HoldStatus",
    "IdempotencyRecord",
    "JournalEntry",
    "LedgerAccount",
    "LedgerBalance",
    "LedgerHold",
    "Merchant",
    "OutboxEvent",
    "OwnerControl",
    "PaymentRequest",
    "Posting",
    "Product",
    "Refund",
    "RiskBucket",
    "SequenceDailyUsage",
    "SequenceSettings",
    "SequenceTransfer",
    "SpendCounter",
    "Transaction",
    "VirtualCard",
    "Wallet",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
