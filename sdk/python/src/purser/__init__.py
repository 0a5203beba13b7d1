"""Python client for Purser, the agent-wallet payments API."""

from purser import models, webhooks
from purser._async_client import AsyncPurserClient
from purser._core import UNSET, route_table
from purser._sync_client import PurserClient
from purser.errors import (
    AgentFlaggedError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IdempotencyConflictError,
    InsufficientFundsError,
    InternalServerError,
    LimitExceededError,
    NotFoundError,
    PaymentRefusedError,
    PermissionDeniedError,
    PurserError,
    RateLimitError,
    ValidationError,
    WalletFrozenError,
    WebhookVerificationError,
)

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "APIConnectionError",
    "APIStatusError",
    "AgentFlaggedError",
    "AsyncPurserClient",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "IdempotencyConflictError",
    "InsufficientFundsError",
    "InternalServerError",
    "LimitExceededError",
    "NotFoundError",
    "PaymentRefusedError",
    "PermissionDeniedError",
    "PurserClient",
    "PurserError",
    "RateLimitError",
    "ValidationError",
    "WalletFrozenError",
    "WebhookVerificationError",
    "models",
    "route_table",
    "webhooks",
]
