"""Examples in the OpenAPI document: what ``/docs`` shows for every request, every success
and every error, so that it reads as a reference. ``install_examples`` attaches them to the
document ``app.openapi()`` builds (after ``app.api.openapi`` has documented the errors).

The examples tell one story (an owner, its agent ``AGENT_ID`` with a USDC wallet, a
merchant, a payment of ``"15.99"`` …) with ids as Purser writes them (``agent_`` + 16
hex, ``tx_`` …), amounts as decimal strings, times in ISO 8601 UTC. The tables:

- ``SCHEMA_EXAMPLES``, by component schema name (request and response models): the
  example goes on the component and on every request body and 2xx response whose schema
  is that component (a list of it shows a list of one);
- ``OPERATION_EXAMPLES``, by ``operationId``: what an operation shows instead of its
  schemas' examples: ``"request"`` (one), ``"requests"`` (several, by name: the first is
  the one Swagger UI fills in), or a 2xx status (``"202"``: a pending transfer; ``"200"``:
  a capture answers a captured hold);
- ``OPERATION_ERRORS``, by ``operationId``: the problem bodies of the errors particular
  to the operation (a refused payment, a hold no longer pending), each shown under the
  response of its ``status``. The errors of the shared machinery come from
  ``shared_errors`` for every operation that documents their status: 401 without a key,
  403 without the route's scope or for an agent key on an owner route, 404 for each path
  parameter (``NOT_FOUND_BY_PARAMETER``), 400/409/403 of an ``Idempotency-Key``, 400 of
  a ``Dry-Run`` header, 413, 422, 429, 500, and 409/502 of the routes that call Sequence;
- ``EXTRA_RESPONSES``: responses an operation can answer that its route does not declare;
  ``UNANSWERED``: statuses a route declares that the server never answers (no example).

Every problem example is rendered by ``problem_members`` from the error class the server
raises, so its ``type``, ``title``, ``status`` and ``code`` are what a client receives.

To document a new route: give each new request or response model an entry in
``SCHEMA_EXAMPLES``, the route's own errors an entry in ``OPERATION_ERRORS`` (a new path
parameter an entry in ``NOT_FOUND_BY_PARAMETER``), and run
``tests/api/test_openapi_reference.py``: it names what an operation still lacks, and
checks every example against the models the route validates and writes with.
"""

from collections.abc import Callable
from copy import deepcopy
from typing import Any, Final, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.api.deps import (
    DRY_RUN_HEADER,
    Access,
    AgentKeyNotAllowed,
    InvalidDryRun,
    RateLimited,
    access_of,
)
from app.api.problems import PROBLEM_JSON, SEED_GATEWAY_PREFIX, problem_members
from app.api.routing import InvalidJson, UnstorableText
from app.domain.agent.errors import AgentNotFound, OwnerMismatch
from app.domain.apikey.errors import InsufficientScope, InvalidApiKey, KeyCeilingExceeded
from app.domain.apikey.schemas import KeyKind
from app.domain.apikey.service import ApiKeyNotFound
from app.domain.catalog.errors import ProductNotFound
from app.domain.idempotency.errors import (
    IdempotencyKeyForbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from app.domain.journal.errors import EntryNotFound
from app.domain.ledger.errors import CaptureExceedsHold, HoldNotFound, HoldNotPending
from app.domain.merchant.errors import MerchantNotFound
from app.domain.payment.errors import (
    AgentFlagged,
    AgentFlaggedHold,
    AgentInactive,
    InsufficientBalance,
    InvalidPayment,
    LimitExceeded,
    ProductMerchantMismatch,
    ProductOutOfStock,
    RecipientNotAuthorized,
    RecipientNotFound,
    RiskDenied,
    TransactionNotFound,
    WalletFrozen,
)
from app.domain.payment.errors import CurrencyMismatch as PaymentCurrencyMismatch
from app.domain.payment_request.errors import PaymentRequestNotFound, RequestNotPayable
from app.domain.refund.errors import NotRefundable, RefundExceedsPayment
from app.domain.risk.errors import InvalidService, ServiceNotFound
from app.domain.sequence.errors import (
    AmbiguousPodName,
    ConnectionBusy,
    FundingNotFound,
    InstantNotSupported,
    InvalidConnection,
    InvalidFunding,
    InvalidTransfer,
    NotConnected,
    PodNotFound,
    SequenceTransferNotFound,
    TransferLimitExceeded,
    TransferRefused,
    UpstreamFailed,
)
from app.domain.test_clock.errors import ClockOutOfRange, TestClockUnavailable
from app.domain.wallet.errors import FundingNotAllowed
from app.domain.webhook.errors import (
    DeliveryNotFound,
    InvalidWebhookUrl,
    UnknownEventType,
    WebhookNotFound,
)
from app.errors import AppError, ServiceUnavailable, ValidationFailed
from app.kit.encryption import SecretsUnavailable
from app.kit.money import InvalidAmount, UnknownCurrency

Json = Any
_T = TypeVar("_T")

# --- the story's ids and times -----------------------------------------------------------

OWNER_ID: Final = "owner_5c1d9e3a7f2b4860"
#: The owner's shopping agent, which pays; ``WALLET_ID`` is its USDC wallet.
AGENT_ID: Final = "agent_3f9c2a7b1d4e8f60"
WALLET_ID: Final = "wallet_9d4e2b7c1a6f3e80"
#: Another agent: it is asked to pay a payment request, and is paid wallet to wallet.
OTHER_AGENT_ID: Final = "agent_7e2b5d8c4a1f9036"
OTHER_WALLET_ID: Final = "wallet_2c8f6a1d9e4b7035"
MERCHANT_ID: Final = "merchant_b71e4c9a2d6f3058"
MERCHANT_WALLET_ID: Final = "wallet_e5a3c7f1b9d2406c"
PRODUCT_ID: Final = "prod_4d8a2f6c1e9b7305"
TX_ID: Final = "tx_a41c9e7b3d2f6058"
CAPTURE_TX_ID: Final = "tx_5e2a9c7f1b3d8046"
REQUEST_TX_ID: Final = "tx_0b6d3f9a2c7e1f48"
REFUSED_TX_ID: Final = "tx_93d1f7a5c2e8b604"
HOLD_ID: Final = "hold_c93e1a5f7b2d4068"
PAYMENT_REQUEST_ID: Final = "preq_6b3f9d1e7a2c4085"
REFUND_ID: Final = "re_8f1c4a7e2b9d6035"
KEY_ID: Final = "key_0f3a9c2e7b1d4e68"
#: A key reads ``sk_test_<its key id's 16 hex>_<64 hex secret>``; this one is made up.
KEY_SECRET: Final = (
    f"sk_test_{KEY_ID.removeprefix('key_')}_"
    "d6f7bc53962baf35c54c39bf502066f0b385e62c83ee08d93c013d694e89458f"
)
SUBSCRIPTION_ID: Final = "whsub_1e7c4a9f2b6d3085"
WEBHOOK_SECRET: Final = "whsec_IY6fZFjohOMhIXXrPjCnZapSVk7cyJRo0AI40bByqHM="  # noqa: S105 - made up
EVENT_ID: Final = "evt_d0b22eea1245d0ffd0ee"
REQUEST_ID: Final = "req_61af70a9cbbf5e01ffddee1f"
ENTRY_ID: Final = "je_5cb9b6f2bb75cd20188ffa16"
FUNDING_ID: Final = "fund_68f1c6fe6e2673e381b50d63"
SEQUENCE_TRANSFER_ID: Final = "seqt_74194bbd42ecbb0b340a1ed7"
#: Sequence's own ids are UUIDs.
POD_ID: Final = "1cb599d9-470b-43f8-bcee-898e3898dbe8"
OTHER_POD_ID: Final = "30836eaa-d449-464b-8ba8-76d444e553f3"
PORT_ID: Final = "46522cde-db64-47cf-bfee-cf8b62913cd3"
EXTERNAL_ACCOUNT_ID: Final = "b10e447d-83ec-49f8-8c3c-5432c3a972ba"
UPSTREAM_TRANSFER_ID: Final = "6391c0e4-26e3-4d56-a53a-470b185755ca"

CREATED_AT: Final = "2026-03-02T14:05:09.412870Z"
PAID_AT: Final = "2026-03-02T14:07:31.208114Z"
PAID_DONE_AT: Final = "2026-03-02T14:07:31.214590Z"
LATER_AT: Final = "2026-03-02T14:21:46.903377Z"

# --- component schemas -------------------------------------------------------------------

_RISK: Final[dict[str, Json]] = {
    "decision": "allow",
    "score": 20,
    "level": "low",
    "factors": [
        {"name": "young_wallet", "points": 10, "reason": "wallet younger than 24 hours"},
        {
            "name": "new_recipient",
            "points": 10,
            "reason": "first payment to this recipient, which is not an authorized service",
        },
    ],
}
_TRANSACTION: Final[dict[str, Json]] = {
    "tx_id": TX_ID,
    "from_wallet": WALLET_ID,
    "to_wallet": MERCHANT_WALLET_ID,
    "amount": "15.99",
    "fee": "0.10",
    "total_cost": "16.09",
    "currency": "USDC",
    "purpose": "USB-C hub for the office",
    "status": "completed",
    "error_message": None,
    "created_at": PAID_AT,
    "completed_at": PAID_DONE_AT,
    "agent_id": AGENT_ID,
    "merchant_id": MERCHANT_ID,
    "recipient_agent_id": None,
    "product_id": None,
    "refunded_amount": "0.00",
    "risk": _RISK,
}
_WALLET: Final[dict[str, Json]] = {
    "wallet_id": WALLET_ID,
    "agent_id": AGENT_ID,
    "balance": "83.91",
    "held_balance": "0.00",
    "currency": "USDC",
    "limit_per_tx": "50.00",
    "limit_total": None,
    "limit_daily": "200.00",
    "limit_weekly": None,
    "limit_monthly": "1000.00",
    "spent_total": "15.99",
    "remaining_limit": None,
    "limits": {
        "per_tx": {"limit": "50.00", "used": "0.00", "remaining": "50.00", "resets_at": None},
        "daily": {
            "limit": "200.00",
            "used": "15.99",
            "remaining": "184.01",
            "resets_at": "2026-03-03T00:00:00Z",
        },
        "monthly": {
            "limit": "1000.00",
            "used": "15.99",
            "remaining": "984.01",
            "resets_at": "2026-04-01T00:00:00Z",
        },
    },
    "frozen": False,
    "frozen_by": [],
    "virtual_card": {
        "card_id": "vc_6a1f3c9e2d7b4a05",
        "masked_number": "**** **** **** 4242",
        "is_active": True,
    },
    "is_active": True,
    "created_at": CREATED_AT,
}
_AGENT: Final[dict[str, Json]] = {
    "agent_id": AGENT_ID,
    "name": "shopping_agent_1",
    "owner_id": OWNER_ID,
    "description": "Buys office supplies within a monthly budget",
    "wallet_id": WALLET_ID,
    "is_active": True,
    "enforce_authorized_services": False,
    "created_at": CREATED_AT,
}
_HOLD: Final[dict[str, Json]] = {
    "hold_id": HOLD_ID,
    "agent_id": AGENT_ID,
    "merchant_id": MERCHANT_ID,
    "wallet_id": WALLET_ID,
    "amount": "30.00",
    "fee": "0.10",
    "currency": "USDC",
    "purpose": "Monitor arm, pending shipment",
    "status": "pending",
    "captured_amount": None,
    "capture_tx_id": None,
    "created_at": PAID_AT,
    "expires_at": "2026-03-02T14:37:31.208114Z",
    "resolved_at": None,
}
_PAYMENT_REQUEST: Final[dict[str, Json]] = {
    "request_id": PAYMENT_REQUEST_ID,
    "requester_agent_id": AGENT_ID,
    "payer_agent_id": OTHER_AGENT_ID,
    "amount": "12.50",
    "currency": "USDC",
    "description": "Shared research dataset, March",
    "status": "pending",
    "created_at": PAID_AT,
    "expires_at": "2026-03-03T14:07:31.208114Z",
    "resolved_at": None,
    "tx_id": None,
}
_KEY: Final[dict[str, Json]] = {
    "key_id": KEY_ID,
    "name": "checkout agent",
    "owner_id": OWNER_ID,
    "agent_id": AGENT_ID,
    "scopes": ["payments:write", "wallet:read"],
    "tier": "standard",
    "mode": "sandbox",
    "created_at": CREATED_AT,
    "expires_at": "2026-06-30T00:00:00Z",
    "revoked_at": None,
}
_WEBHOOK: Final[dict[str, Json]] = {
    "subscription_id": SUBSCRIPTION_ID,
    "url": "https://hooks.example.com/purser",
    "events": ["payment.completed", "payment.failed"],
    "description": "Order system",
    "is_active": True,
    "disabled_reason": None,
    "total_deliveries": 42,
    "successful_deliveries": 41,
    "failed_deliveries": 1,
    "created_at": CREATED_AT,
}
_TRANSFER_SUMMARY: Final[dict[str, Json]] = {
    "id": UPSTREAM_TRANSFER_ID,
    "status": "COMPLETE",
    "amount_cents": 2500,
    "amount": "$25.00",
    "direction": "INTERNAL",
    "activity_type": "USER",
    "source": {"id": POD_ID, "name": "Agent Budget", "type": "POD"},
    "destination": {"id": OTHER_POD_ID, "name": "Groceries", "type": "POD"},
    "error_reason": None,
    "created_at": PAID_AT,
    "completed_at": "2026-03-02T14:07:32.208114Z",
}
_POD: Final[dict[str, Json]] = {
    "id": POD_ID,
    "name": "Agent Budget",
    "organization_id": None,
    "balance_cents": 250000,
    "balance": "$2,500.00",
}
_FUNDING: Final[dict[str, Json]] = {
    "funding_id": FUNDING_ID,
    "agent_id": AGENT_ID,
    "wallet_id": WALLET_ID,
    "status": "completed",
    "amount": "25.00",
    "currency": "USD",
    "pod_id": POD_ID,
    "transfer_id": UPSTREAM_TRANSFER_ID,
    "error": None,
    "created_at": PAID_AT,
    "completed_at": "2026-03-02T14:07:34.745173Z",
}
_TRANSFER_RESULT: Final[dict[str, Json]] = {
    "status": "completed",
    "transfer_id": UPSTREAM_TRANSFER_ID,
    "id": SEQUENCE_TRANSFER_ID,
    "amount_cents": 2500,
    "source_id": POD_ID,
    "destination_id": OTHER_POD_ID,
    "sequence_status": "COMPLETE",
    "error": None,
}

_AUDIT_RECORD: Final[dict[str, Json]] = {
    "seq": 42,
    "event": "payment_completed",
    "key_id": KEY_ID,
    "request_id": REQUEST_ID,
    "subject_type": "transaction",
    "subject_id": TX_ID,
    "agent_id": AGENT_ID,
    "amount": "15.99",
    "currency": "USDC",
    # The fee in minor units, as the ledger keeps it (0.10 USDC at scale 6).
    "data": {"fee": 100000, "entry_id": ENTRY_ID},
    "created_at": PAID_DONE_AT,
    "sealed": True,
}

#: The wallet as ``POST /agents`` creates it: funded, nothing spent yet.
_NEW_WALLET: Final[dict[str, Json]] = {
    **_WALLET,
    "balance": "100.00",
    "spent_total": "0.00",
    "limits": {
        name: {**state, "used": "0.00", "remaining": state["limit"]}
        for name, state in _WALLET["limits"].items()
    },
}
#: ``Dry-Run: true`` on ``POST /payments/holds``: allowed, nothing written.
_DRY_RUN_HOLD: Final[dict[str, Json]] = {
    "dry_run": True,
    "decision": "allow",
    "status_code": 201,
    "reasons": [],
    "wallet_id": WALLET_ID,
    "amount": "30.00",
    "fee": "0.10",
    "currency": "USDC",
    "projected_balance": "53.81",
    "projected_held_balance": "30.10",
    "limits": {
        "per_tx": _WALLET["limits"]["per_tx"],
        "daily": {**_WALLET["limits"]["daily"], "used": "45.99", "remaining": "154.01"},
        "monthly": {**_WALLET["limits"]["monthly"], "used": "45.99", "remaining": "954.01"},
    },
    "risk": {**_RISK, "score": 10, "factors": _RISK["factors"][:1]},
}


def _account(id_: str, name: str, type_: str, cents: int, balance: str, **more: Json) -> Json:
    return {
        "id": id_,
        "name": name,
        "type": type_,
        "institution": more.get("institution"),
        "external_account_type": more.get("external_account_type"),
        "balance_cents": cents,
        "balance": balance,
    }


#: One example per component schema, by the schema's name in ``components.schemas``.
_MERCHANT_OWNER: Final = {
    "type": "merchant",
    "id": MERCHANT_ID,
    "name": "TechStore Electronics",
    "wallet_id": MERCHANT_WALLET_ID,
}
_FEE_OWNER: Final = {"type": "fee", "id": None, "name": "Fee revenue", "wallet_id": None}
_MERCHANT_POSTING: Final = {
    "account": "merchant",
    "owner": _MERCHANT_OWNER,
    "amount": "15.99",
    "currency": "USDC",
}
_PAYMENT_REFERENCE: Final = {"type": "payment", "id": TX_ID, "tx_id": TX_ID, "transfer_id": None}

SCHEMA_EXAMPLES: Final[dict[str, Json]] = {
    "Health": {"status": "ok"},
    "Readiness": {"status": "ready", "database": "ok"},
    "SeedHealth": {"status": "ok"},
    # keys
    "ApiKeyCreate": {
        "name": "checkout agent",
        "agent_id": AGENT_ID,
        "scopes": ["payments:write", "wallet:read"],
        "tier": "standard",
        "expires_at": "2026-06-30T00:00:00Z",
    },
    "ApiKeyRead": _KEY,
    "ApiKeyCreated": {**_KEY, "secret": KEY_SECRET},
    # agents and wallets
    "AgentCreate": {
        "name": "shopping_agent_1",
        "description": "Buys office supplies within a monthly budget",
        "initial_balance": "100.00",
        "limit_per_tx": "50.00",
        "limit_daily": "200.00",
        "limit_monthly": "1000.00",
        "currency": "USDC",
    },
    "AgentCreated": {"agent": _AGENT, "wallet": _NEW_WALLET},
    "AgentRead": _AGENT,
    "AgentUpdate": {
        "description": "Buys office supplies and software licences",
        "enforce_authorized_services": True,
    },
    "WalletRead": _WALLET,
    "VirtualCardRead": _WALLET["virtual_card"],
    "LimitStateRead": _WALLET["limits"]["daily"],
    "WalletLimitsUpdate": {"limit_per_tx": "75.00", "limit_weekly": "400.00", "limit_total": None},
    # merchants and catalog
    "MerchantCreate": {
        "name": "TechStore Electronics",
        "description": "Computer accessories, shipped in two days",
        "category": "electronics",
        "currency": "USDC",
    },
    "MerchantRead": {
        "merchant_id": MERCHANT_ID,
        "name": "TechStore Electronics",
        "wallet_id": MERCHANT_WALLET_ID,
        "description": "Computer accessories, shipped in two days",
        "category": "electronics",
        "is_active": True,
        "created_at": CREATED_AT,
    },
    "MerchantWalletRead": {
        "wallet_id": MERCHANT_WALLET_ID,
        "merchant_id": MERCHANT_ID,
        "balance": "15.99",
        "currency": "USDC",
        "is_active": True,
        "created_at": CREATED_AT,
    },
    "ProductCreate": {
        "merchant_id": MERCHANT_ID,
        "name": "USB-C Hub 7-in-1",
        "description": "HDMI 4K, 3 x USB-A, SD card reader, 100 W pass-through",
        "price": "15.99",
        "currency": "USDC",
        "category": "electronics",
        "in_stock": True,
    },
    "ProductUpdate": {"price": "14.49", "in_stock": True},
    "ProductRead": {
        "product_id": PRODUCT_ID,
        "name": "USB-C Hub 7-in-1",
        "description": "HDMI 4K, 3 x USB-A, SD card reader, 100 W pass-through",
        "price": "15.99",
        "currency": "USDC",
        "category": "electronics",
        "in_stock": True,
        "merchant_id": MERCHANT_ID,
    },
    # payments
    "PaymentCreate": {
        "agent_id": AGENT_ID,
        "merchant_id": MERCHANT_ID,
        "amount": "15.99",
        "currency": "USDC",
        "purpose": "USB-C hub for the office",
    },
    "PaymentResult": {"success": True, "transaction": _TRANSACTION, "error": None},
    "TransactionRead": _TRANSACTION,
    "RiskRecord": _RISK,
    "RiskFactor": _RISK["factors"][0],
    "DryRunResult": _DRY_RUN_HOLD,
    "DryRunReason": {
        "code": "limit_exceeded",
        "message": "Amount 60.00 exceeds the per-transaction limit of 50.00",
    },
    "PaymentEstimate": {"amount": "15.99", "fee": "0.10", "total": "16.09", "currency": "USDC"},
    "RefundCreate": {"amount": "5.00", "reason": "One item returned"},
    "RefundRead": {
        "refund_id": REFUND_ID,
        "tx_id": TX_ID,
        "amount": "5.00",
        "fee_returned": "0.00",
        "currency": "USDC",
        "reason": "One item returned",
        "status": "succeeded",
        "created_at": LATER_AT,
    },
    # holds and payment requests
    "HoldCreate": {
        "agent_id": AGENT_ID,
        "merchant_id": MERCHANT_ID,
        "amount": "30.00",
        "currency": "USDC",
        "expires_in_minutes": 30,
        "purpose": "Monitor arm, pending shipment",
    },
    "HoldCapture": {"amount": "12.50"},
    "HoldRead": _HOLD,
    "PaymentRequestCreate": {
        "requester_agent_id": AGENT_ID,
        "payer_agent_id": OTHER_AGENT_ID,
        "amount": "12.50",
        "currency": "USDC",
        "description": "Shared research dataset, March",
        "expires_in_hours": 24,
    },
    "PaymentRequestRead": _PAYMENT_REQUEST,
    # risk
    "RiskScore": {
        "score": 20.0,
        "level": "low",
        "factors": _RISK["factors"],
        "details": {
            "payments_last_hour": 3,
            "payments_last_day": 7,
            "completed_payments": 7,
            "refused_attempts": 1,
            "volume": "112.45",
            "currency": "USDC",
            "wallet_created_at": "2026-03-02T14:05:09.412870+00:00",
            "is_flagged": False,
        },
        "is_acceptable": True,
    },
    "RiskProfile": {
        "agent_id": AGENT_ID,
        "current_score": 20.0,
        "current_level": "low",
        "total_transactions": 8,
        "failed_transactions": 1,
        "total_volume": "112.45",
        "is_flagged": False,
        "flag_reason": None,
        "authorized_services": [MERCHANT_ID],
    },
    "ServiceAuthorize": {"service_id": MERCHANT_ID},
    # freeze
    "FreezeCreate": {"release_holds": True},
    "FreezeRead": {
        "scope": "agent",
        "agent_id": AGENT_ID,
        "frozen": True,
        "frozen_by": ["agent"],
        "changed": True,
        "agent_ids": [AGENT_ID],
        "holds_released": [HOLD_ID],
    },
    # journal
    "WalletEntry": {
        "entry_id": ENTRY_ID,
        "kind": "payment",
        "account": "available",
        "amount": "-16.09",
        "balance_after": "83.91",
        "currency": "USDC",
        "counterparties": [
            {
                "account": "merchant",
                "owner": _MERCHANT_OWNER,
                "amount": "15.99",
                "currency": "USDC",
            },
            {"account": "fee_revenue", "owner": _FEE_OWNER, "amount": "0.10", "currency": "USDC"},
        ],
        "reference": _PAYMENT_REFERENCE,
        "description": "USB-C hub for the office",
        "created_at": PAID_AT,
    },
    "JournalEntryRead": {
        "entry_id": ENTRY_ID,
        "kind": "payment",
        "reference": _PAYMENT_REFERENCE,
        "description": "USB-C hub for the office",
        "postings": [
            {
                "account": "wallet_available",
                "owner": {
                    "type": "agent",
                    "id": AGENT_ID,
                    "name": "shopping_agent_1",
                    "wallet_id": WALLET_ID,
                },
                "amount": "-16.09",
                "currency": "USDC",
            },
            {
                "account": "merchant",
                "owner": _MERCHANT_OWNER,
                "amount": "15.99",
                "currency": "USDC",
            },
            {"account": "fee_revenue", "owner": _FEE_OWNER, "amount": "0.10", "currency": "USDC"},
        ],
        "created_at": PAID_AT,
    },
    # test clock
    "ClockAdvance": {"seconds": 86_400},
    "ClockRead": {
        "now": "2026-12-01T10:15:00Z",
        "offset_seconds": 86_400,
        "server_now": "2026-11-30T10:15:00Z",
        "holds_expired": 1,
        "payment_requests_expired": 0,
    },
    "AuthorizedServices": {"agent_id": AGENT_ID, "services": [MERCHANT_ID]},
    "FlagCreate": {"reason": "Unusual purchases at night"},
    "FlagState": {
        "agent_id": AGENT_ID,
        "is_flagged": True,
        "flag_reason": "Unusual purchases at night",
        "flagged_at": LATER_AT,
    },
    # audit
    "AuditRecordRead": _AUDIT_RECORD,
    "AuditPage": {"data": [_AUDIT_RECORD], "next_cursor": "aud_42"},
    # webhooks
    "WebhookCreate": {
        "url": "https://hooks.example.com/purser",
        "events": ["payment.completed", "payment.failed"],
        "description": "Order system",
    },
    "WebhookUpdate": {"events": ["payment.completed", "payment.refunded"], "is_active": True},
    "WebhookRead": _WEBHOOK,
    "WebhookCreated": {**_WEBHOOK, "secret": WEBHOOK_SECRET},
    "EventType": {"type": "payment.completed", "description": "Payment successful"},
    "DeliveryAttemptRead": {
        "event_id": EVENT_ID,
        "event_type": "payment.completed",
        "attempt": 2,
        "status_code": 503,
        "latency_ms": 184,
        "error": "HTTP 503",
        "next_retry_at": "2026-03-02T14:12:31.214590Z",
        "attempted_at": "2026-03-02T14:08:01.214590Z",
        "delivery_status": "pending",
    },
    "TestDelivery": {"event_id": EVENT_ID, "status": "queued"},
    # Sequence
    "Pod": _POD,
    "PodDetail": {
        **_POD,
        "description": "What the agents may spend",
        "goal_amount_cents": 500000,
        "available_balance_cents": 250000,
        "balance_last_updated_at": PAID_AT,
        "recent_transfers": [_TRANSFER_SUMMARY],
    },
    "TotalBalance": {"total_balance_cents": 532000, "total_balance": "$5,320.00", "pod_count": 5},
    "TransferSummary": _TRANSFER_SUMMARY,
    "AccountItem": _account(POD_ID, "Agent Budget", "POD", 250000, "$2,500.00"),
    "Accounts": {
        "pods": [_account(POD_ID, "Agent Budget", "POD", 250000, "$2,500.00")],
        "ports": [
            _account(
                PORT_ID,
                "Main Payroll",
                "INCOME_SOURCE",
                320000,
                "$3,200.00",
                institution="Sequence",
            )
        ],
        "accounts": [
            _account(
                EXTERNAL_ACCOUNT_ID,
                "Chase Checking ••4567",
                "EXTERNAL_ACCOUNT",
                1234500,
                "$12,345.00",
                institution="Chase",
                external_account_type="DEPOSITORY",
            )
        ],
    },
    "ActivitySummary": {
        "transfer_count": 6,
        "rule_executions": 1,
        "total_incoming_cents": 421250,
        "total_incoming": "$4,212.50",
        "period_start": "2026-03-01T00:00:00Z",
    },
    "ActivityPage": {"transfers": [_TRANSFER_SUMMARY], "has_next_page": True, "end_cursor": "1"},
    "TransferCreate": {
        "source_id": POD_ID,
        "destination_id": OTHER_POD_ID,
        "amount_cents": 2500,
        "source_type": "POD",
        "destination_type": "POD",
        "description": "Groceries",
    },
    "TransferResult": _TRANSFER_RESULT,
    "ConnectionPut": {
        "api_key": "seq_pk_4f8a9c2e7b1d3a6f",
        "base_url": "https://api.getsequence.io/platform/v1",
    },
    "ConnectionRead": {
        "source": "owner",
        "key_hint": "…3a6f",
        "base_url": "https://api.getsequence.io/platform/v1",
        "updated_at": LATER_AT,
    },
    "LimitsPut": {"max_transfer_cents": 500000, "max_daily_transfer_cents": 1500000},
    "LimitsRead": {
        "max_transfer_cents": 500000,
        "max_daily_transfer_cents": 1500000,
        "used_today_cents": 2500,
        "remaining_today_cents": 1497500,
    },
    "FundingCreate": {"source": "sequence", "pod_id": POD_ID, "amount": "25.00"},
    "FundingRead": _FUNDING,
}

# --- operations -------------------------------------------------------------------------

_REQUEST_PAYMENT: Final[dict[str, Json]] = {
    **_TRANSACTION,
    "tx_id": REQUEST_TX_ID,
    "from_wallet": OTHER_WALLET_ID,
    "to_wallet": WALLET_ID,
    "amount": "12.50",
    "total_cost": "12.60",
    "purpose": "Shared research dataset, March",
    "agent_id": OTHER_AGENT_ID,
    "merchant_id": None,
    "recipient_agent_id": AGENT_ID,
}
_CAPTURED_HOLD: Final[dict[str, Json]] = {
    **_HOLD,
    "status": "captured",
    "captured_amount": "12.50",
    "capture_tx_id": CAPTURE_TX_ID,
    "resolved_at": LATER_AT,
}
_PENDING_TRANSFER: Final[dict[str, Json]] = {
    **_TRANSFER_RESULT,
    "status": "pending",
    "sequence_status": "PENDING",
}

#: By ``operationId``: ``"request"`` (one example), or ``"requests"`` (``{name: example}``: the
#: first is the one Swagger UI fills in), and 2xx bodies that differ from the schema's.
OPERATION_EXAMPLES: Final[dict[str, dict[str, Json]]] = {
    "create_payment_api_v1_payments_post": {
        "requests": {
            "pay a merchant": SCHEMA_EXAMPLES["PaymentCreate"],
            "buy a catalog product": {
                "agent_id": AGENT_ID,
                "product_id": PRODUCT_ID,
                "purpose": "USB-C hub for the office",
            },
            "pay another agent's wallet": {
                "agent_id": AGENT_ID,
                "recipient_wallet_id": OTHER_WALLET_ID,
                "amount": "2.50",
                "currency": "USDC",
                "purpose": "Share of the translation job",
            },
        },
    },
    "pay_payment_request_api_v1_payments_request__request_id__pay_post": {
        "200": {"success": True, "transaction": _REQUEST_PAYMENT, "error": None},
    },
    "cancel_payment_request_api_v1_payments_request__request_id__delete": {
        "200": {**_PAYMENT_REQUEST, "status": "cancelled", "resolved_at": LATER_AT},
    },
    "capture_hold_api_v1_payments_holds__hold_id__capture_post": {"200": _CAPTURED_HOLD},
    "void_hold_api_v1_payments_holds__hold_id__void_post": {
        "200": {**_HOLD, "status": "voided", "resolved_at": LATER_AT},
    },
    "revoke_key_api_v1_keys__key_id__delete": {"200": {**_KEY, "revoked_at": LATER_AT}},
    "unflag_agent_api_v1_risk_agents__agent_id__flag_delete": {
        "200": {"agent_id": AGENT_ID, "is_flagged": False, "flag_reason": None, "flagged_at": None},
    },
    "revoke_service_api_v1_risk_agents__agent_id__authorize__service_id__delete": {
        "200": {"agent_id": AGENT_ID, "services": []},
    },
    "delete_connection_api_v1_sequence_connection_delete": {
        "200": {
            "source": "default",
            "key_hint": "…9f2c",
            "base_url": "https://api.getsequence.io/platform/v1",
            "updated_at": LATER_AT,
        },
    },
    "unfreeze_agent_api_v1_agents__agent_id__unfreeze_post": {
        "200": {
            "scope": "agent",
            "agent_id": AGENT_ID,
            "frozen": False,
            "frozen_by": [],
            "changed": True,
            "agent_ids": [AGENT_ID],
            "holds_released": [],
        },
    },
    "freeze_owner_api_v1_freeze_post": {
        "200": {
            "scope": "owner",
            "agent_id": None,
            "frozen": True,
            "frozen_by": ["owner"],
            "changed": True,
            "agent_ids": [AGENT_ID, OTHER_AGENT_ID],
            "holds_released": [HOLD_ID],
        },
    },
    "unfreeze_owner_api_v1_unfreeze_post": {
        "200": {
            "scope": "owner",
            "agent_id": None,
            "frozen": False,
            "frozen_by": [],
            "changed": True,
            "agent_ids": [AGENT_ID, OTHER_AGENT_ID],
            "holds_released": [],
        },
    },
    "refund_payment_api_v1_payments__tx_id__refund_post": {
        # ``Dry-Run: true``: what the refund would leave the payer's wallet with.
        "200": {
            **_DRY_RUN_HOLD,
            "amount": "5.00",
            "fee": None,
            "projected_balance": "88.91",
            "projected_held_balance": "0.00",
            "limits": {
                "per_tx": _WALLET["limits"]["per_tx"],
                "daily": {**_WALLET["limits"]["daily"], "used": "10.99", "remaining": "189.01"},
                "monthly": {
                    **_WALLET["limits"]["monthly"],
                    "used": "10.99",
                    "remaining": "989.01",
                },
            },
            "risk": None,
        },
    },
    "create_transfer_api_v1_sequence_transfers_post": {
        "200": _TRANSFER_RESULT,
        "202": _PENDING_TRANSFER,
    },
    "fund_wallet_api_v1_agents__agent_id__wallet_fund_post": {
        "202": {**_FUNDING, "status": "pending", "transfer_id": None, "completed_at": None},
    },
}

# --- errors -----------------------------------------------------------------------------


def problem_example(error: AppError, **members: Json) -> dict[str, Json]:
    """The body the server answers for ``error`` (``problem_members``), plus ``members``
    (a refusal's ``tx_id``, a validation error's ``errors``), ``request_id`` last."""
    body = {key: value for key, value in problem_members(error).items() if key != "request_id"}
    return {**body, **members, "request_id": REQUEST_ID}


def _plain_problem(status: int, code: str, title: str, detail: str) -> dict[str, Json]:
    """A problem the edge answers itself, without an ``AppError`` (``app.api.edge``)."""
    return {
        "type": f"https://purser.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": REQUEST_ID,
    }


def _refused_payment(error: AppError) -> dict[str, Json]:
    """A refused payment: ``POST /payments``' shape plus problem details and the recorded
    failed transaction's ``tx_id`` (``app.api.v1.payments.respond_payment``)."""
    refused = {"success": False, "transaction": None, "error": error.detail, "tx_id": REFUSED_TX_ID}
    return {**refused, **problem_example(error)}


def _refused_hold(error: AppError) -> dict[str, Json]:
    """A refused hold: ``{hold: null, error}`` plus problem details."""
    return {"hold": None, "error": error.detail, **problem_example(error)}


def _invalid_field(param: str, message: str, where: str = "body") -> dict[str, Json]:
    """A request that fails its model's validation (``app.api.problems``)."""
    error = ValidationFailed(f"{param}: {message}", param=param)
    return problem_example(error, errors=[{"loc": [where, param], "msg": message}])


_INSUFFICIENT = InsufficientBalance("Insufficient balance: have 3.20, need 16.09")
_LIMIT = LimitExceeded("Amount 60.00 exceeds the per-transaction limit of 50.00")
_FLAGGED = AgentFlagged(f"Agent {AGENT_ID} is flagged: Unusual purchases at night")
_INACTIVE = AgentInactive(f"Agent {AGENT_ID} is inactive")
_FROZEN = WalletFrozen(f"Wallet {WALLET_ID} is frozen (agent {AGENT_ID} frozen)")
_NOT_AUTHORIZED = RecipientNotAuthorized(
    f"Agent {AGENT_ID} may pay only its authorized services; {MERCHANT_ID} is not one of them"
)
_RISK_DENIED = RiskDenied(
    "Risk score 95 reaches the block score 90: 25 completed payments in the last hour "
    "(above 20); amount 640.00 USDC is at least 500 USDC; first payment to this recipient, "
    "which is not an authorized service; wallet younger than 24 hours"
)
_AGENT_NOT_FOUND = AgentNotFound(f"Agent {AGENT_ID} not found", param="agent_id")
_MERCHANT_NOT_FOUND = MerchantNotFound(f"Merchant {MERCHANT_ID} not found", param="merchant_id")
_IN_USE = IdempotencyKeyInUse(
    "A request with this Idempotency-Key is still being processed; retry shortly",
    param="Idempotency-Key",
)
_REUSED = IdempotencyKeyReused(
    "This Idempotency-Key was used with a different request body", param="Idempotency-Key"
)
_NOT_CONNECTED = NotConnected(
    "no Sequence connection: PUT /api/v1/sequence/connection with a Platform API key"
)
_UPSTREAM = UpstreamFailed("Sequence did not answer")
_IN_USE_EXAMPLE = problem_example(_IN_USE)

#: What a client is told for a path parameter naming nothing it may see, by the parameter's
#: name (the resource of each path parameter of the API).
NOT_FOUND_BY_PARAMETER: Final[dict[str, AppError]] = {
    "entry_id": EntryNotFound(f"Entry {ENTRY_ID} not found"),
    "agent_id": AgentNotFound(f"Agent {AGENT_ID} not found"),
    "merchant_id": MerchantNotFound(f"Merchant {MERCHANT_ID} not found"),
    "product_id": ProductNotFound(f"Product {PRODUCT_ID} not found"),
    "tx_id": TransactionNotFound(f"Transaction {TX_ID} not found"),
    "hold_id": HoldNotFound(f"Hold {HOLD_ID} not found"),
    "request_id": PaymentRequestNotFound(f"Payment request {PAYMENT_REQUEST_ID} not found"),
    "key_id": ApiKeyNotFound(f"API key {KEY_ID} not found"),
    "subscription_id": WebhookNotFound(f"Webhook {SUBSCRIPTION_ID} not found"),
    "event_id": DeliveryNotFound(f"No delivery of {EVENT_ID} to {SUBSCRIPTION_ID}"),
    "funding_id": FundingNotFound(f"Funding {FUNDING_ID} not found"),
    "pod_id": PodNotFound(f"Pod {POD_ID} not found"),
    "pod_name": PodNotFound("Pod 'Travel' not found"),
    "transfer_id": SequenceTransferNotFound(f"Transfer {SEQUENCE_TRANSFER_ID} not found"),
    "service_id": ServiceNotFound(
        f"{MERCHANT_ID} is not an authorized service of agent {AGENT_ID}", param="service_id"
    ),
    # A query cursor naming a row (``cursor`` names different rows on different routes).
    "starting_after": TransactionNotFound(f"Transaction {TX_ID} not found", param="starting_after"),
}

_PAYMENT_ERRORS: Final[list[dict[str, Json]]] = [
    _refused_payment(_INSUFFICIENT),
    _refused_payment(_LIMIT),
    _refused_payment(
        PaymentCurrencyMismatch(
            "currency EURC is not the currency of the agent's wallet (USDC)", param="currency"
        )
    ),
    _refused_payment(_FLAGGED),
    _refused_payment(_INACTIVE),
    _refused_payment(_FROZEN),
    _refused_payment(_NOT_AUTHORIZED),
    _refused_payment(_RISK_DENIED),
]

#: By ``operationId``: the errors particular to the operation (each under the response of
#: its ``status``), beside the shared ones of ``shared_errors``.
OPERATION_ERRORS: Final[dict[str, list[dict[str, Json]]]] = {
    "liveness_api_v1_health_get": [],
    "list_wallet_entries_api_v1_agents__agent_id__wallet_entries_get": [
        problem_example(EntryNotFound(f"Entry {ENTRY_ID} not found", param="starting_after"))
    ],
    "advance_clock_api_v1_test_clock_advance_post": [
        problem_example(
            ClockOutOfRange("the clock may run at most 3653 days ahead", param="seconds")
        ),
        problem_example(TestClockUnavailable("There is no test clock in live mode")),
    ],
    "get_clock_api_v1_test_clock_get": [
        problem_example(TestClockUnavailable("There is no test clock in live mode")),
    ],
    "readiness_api_v1_health_ready_get": [
        problem_example(ServiceUnavailable("database is not reachable")),
    ],
    "create_key_api_v1_keys_post": [
        problem_example(
            KeyCeilingExceeded(
                "A key can only create keys within its own powers; beyond them: scopes "
                "sequence (not held by this key)",
                beyond={"scopes": ["sequence"]},
            ),
            beyond={"scopes": ["sequence"]},
        ),
        problem_example(_AGENT_NOT_FOUND),
        problem_example(
            ValidationFailed("expires_at must be in the future", param="expires_at"),
        ),
    ],
    "create_agent_api_v1_agents_post": [
        problem_example(
            FundingNotAllowed(
                "initial_balance must be 0 in live mode; fund wallets through a funding rail",
                param="initial_balance",
            )
        ),
        problem_example(
            OwnerMismatch(
                f"owner_id 'owner_0a1b2c3d4e5f6789' is not this API key's owner ({OWNER_ID}): "
                "an agent belongs to the owner of the key that creates it; omit owner_id",
                param="owner_id",
            )
        ),
        problem_example(
            InvalidAmount(
                "limit_per_tx has more than 6 decimal places for USDC", param="limit_per_tx"
            )
        ),
    ],
    "update_wallet_limits_api_v1_agents__agent_id__wallet_limits_patch": [
        problem_example(
            InvalidAmount("limit_daily must be greater than zero", param="limit_daily")
        ),
    ],
    "create_merchant_api_v1_merchants_post": [
        problem_example(
            UnknownCurrency(
                "currency: unknown currency 'EUR'; supported: USD, USDC, USDT, PYUSD, EURC",
                param="currency",
            )
        ),
    ],
    "create_product_api_v1_catalog_products_post": [
        problem_example(MerchantNotFound(f"Merchant {MERCHANT_ID} not found")),
    ],
    "create_payment_api_v1_payments_post": [
        *_PAYMENT_ERRORS,
        problem_example(_AGENT_NOT_FOUND),
        problem_example(_MERCHANT_NOT_FOUND),
        problem_example(
            RecipientNotFound(f"Wallet {OTHER_WALLET_ID} not found", param="recipient_wallet_id")
        ),
        problem_example(ProductNotFound(f"Product {PRODUCT_ID} not found", param="product_id")),
        _refused_payment(
            ProductOutOfStock(f"Product {PRODUCT_ID} is out of stock", param="product_id")
        ),
        _invalid_field("amount", 'must be a decimal string such as "15.99", not a JSON number'),
        problem_example(InvalidPayment("amount is required (or a product_id)", param="amount")),
        _refused_payment(
            ProductMerchantMismatch(
                f"merchant_id {MERCHANT_ID} is not the merchant of product {PRODUCT_ID}",
                param="merchant_id",
            )
        ),
        problem_example(_REUSED),
    ],
    "pay_payment_request_api_v1_payments_request__request_id__pay_post": [
        *_PAYMENT_ERRORS,
        problem_example(RequestNotPayable(f"Payment request {PAYMENT_REQUEST_ID} is paid")),
    ],
    "list_payment_requests_api_v1_payments_request_get": [
        problem_example(
            PaymentRequestNotFound(
                f"Payment request {PAYMENT_REQUEST_ID} not found", param="cursor"
            )
        ),
    ],
    "create_payment_request_api_v1_payments_request_post": [
        problem_example(
            AgentNotFound(f"Agent {AGENT_ID} not found", param="requester_agent_id"),
        ),
        problem_example(
            AgentNotFound(f"Agent {OTHER_AGENT_ID} not found", param="payer_agent_id"),
        ),
        problem_example(
            ValidationFailed("an agent cannot request payment from itself", param="payer_agent_id")
        ),
    ],
    "cancel_payment_request_api_v1_payments_request__request_id__delete": [
        problem_example(
            RequestNotPayable(
                f"Payment request {PAYMENT_REQUEST_ID} is paid; only pending requests can be "
                "cancelled"
            )
        ),
    ],
    "create_hold_api_v1_payments_holds_post": [
        _refused_hold(_INSUFFICIENT),
        _refused_hold(_LIMIT),
        _refused_hold(_FLAGGED),
        _refused_hold(_RISK_DENIED),
        problem_example(_AGENT_NOT_FOUND),
        problem_example(_MERCHANT_NOT_FOUND),
    ],
    "capture_hold_api_v1_payments_holds__hold_id__capture_post": [
        problem_example(HoldNotPending(f"Hold {HOLD_ID} is already captured")),
        problem_example(
            AgentFlaggedHold(f"Agent {AGENT_ID} is flagged: its holds cannot be captured")
        ),
        problem_example(
            CaptureExceedsHold("amount 45.00 exceeds the hold of 30.00", param="amount")
        ),
    ],
    "void_hold_api_v1_payments_holds__hold_id__void_post": [
        problem_example(HoldNotPending(f"Hold {HOLD_ID} is already voided")),
    ],
    "refund_payment_api_v1_payments__tx_id__refund_post": [
        problem_example(
            RefundExceedsPayment("refund of 50.00 exceeds the 10.99 left to refund", param="amount")
        ),
        problem_example(NotRefundable(f"Transaction {TX_ID} is failed and cannot be refunded")),
    ],
    "authorize_service_api_v1_risk_agents__agent_id__authorize_post": [
        problem_example(
            ServiceNotFound(
                f"No merchant or wallet {MERCHANT_ID} of this owner", param="service_id"
            )
        ),
        problem_example(
            InvalidService("an agent's own wallet is not a service it pays", param="service_id")
        ),
    ],
    "flag_agent_api_v1_risk_agents__agent_id__flag_post": [
        _invalid_field("reason", "String should have at least 1 character"),
    ],
    "create_transfer_api_v1_sequence_transfers_post": [
        problem_example(
            TransferLimitExceeded(
                "Amount 2000000 cents exceeds per-transfer limit of 1000000 cents",
                param="amount_cents",
            )
        ),
        problem_example(
            InstantNotSupported(
                "instant transfers are not offered by Sequence's Platform API (ACH only)",
                param="instant",
            )
        ),
        problem_example(
            TransferRefused(
                f"Sequence: INSUFFICIENT_FUNDS: Pod balance too low (transfer "
                f"{SEQUENCE_TRANSFER_ID})"
            )
        ),
        problem_example(
            InvalidTransfer("source_id and destination_id must differ", param="destination_id")
        ),
        problem_example(
            IdempotencyKeyInUse(
                "A transfer with this Idempotency-Key is still being sent; retry shortly",
                param="Idempotency-Key",
            )
        ),
    ],
    "pod_balance_api_v1_sequence_pods__pod_name__balance_get": [
        problem_example(
            AmbiguousPodName("Pod name 'agent' matches several pods: Agent Budget, Agent Reserve")
        ),
    ],
    "put_connection_api_v1_sequence_connection_put": [
        problem_example(
            NotConnected("Sequence keys cannot be stored: PURSER_SECRET_KEY is not set")
        ),
        problem_example(
            ConnectionBusy(
                "1 Sequence transfer(s) of this owner are not settled yet; change the "
                "connection once they are (GET /api/v1/sequence/activity)"
            )
        ),
        problem_example(
            InvalidConnection("base_url host 10.0.0.7 is not a public address", param="base_url")
        ),
    ],
    "fund_wallet_api_v1_agents__agent_id__wallet_fund_post": [
        problem_example(
            TransferRefused(
                f"wallet {WALLET_ID} holds USDC: only dollar wallets are funded from Sequence",
                param="agent_id",
            )
        ),
        problem_example(
            TransferLimitExceeded(
                "Amount 1200000 cents exceeds per-transfer limit of 1000000 cents",
                param="amount",
            )
        ),
        problem_example(_FLAGGED),
        problem_example(PodNotFound(f"Pod {POD_ID} not found", param="pod_id")),
        problem_example(
            InvalidFunding("amount must be at least 1.00 (Sequence's minimum)", param="amount")
        ),
    ],
    "create_webhook_api_v1_webhooks_post": [
        problem_example(
            InvalidWebhookUrl(
                "url must be an RFC 3986 URI: character U+0020 at position 11 is not allowed "
                "(percent-encode it; write an international host name in its xn-- form)",
                param="url",
            )
        ),
        problem_example(
            UnknownEventType("events: unknown event type 'payment.done'", param="events")
        ),
        problem_example(
            SecretsUnavailable("webhook secrets need PURSER_SECRET_KEY to be configured")
        ),
    ],
    "rotate_webhook_secret_api_v1_webhooks__subscription_id__rotate_secret_post": [
        problem_example(
            SecretsUnavailable("webhook secrets need PURSER_SECRET_KEY to be configured")
        ),
    ],
    "update_webhook_api_v1_webhooks__subscription_id__patch": [
        problem_example(
            UnknownEventType("events: unknown event type 'payment.done'", param="events")
        ),
    ],
}

#: Responses an operation can answer that the routes do not declare, by ``operationId``:
#: the health checks take no key, body or parameter, but every route refuses a query
#: parameter PostgreSQL could not store (``app.api.routing.EdgeRoute``) and a body over
#: ``PURSER_MAX_BODY_BYTES`` (``app.api.edge.BodyLimitMiddleware``).
EXTRA_RESPONSES: Final[dict[str, dict[str, str]]] = {
    operation: {
        "413": "The request carries a body larger than PURSER_MAX_BODY_BYTES",
        "422": "A query parameter holds a NUL character (`param` names it)",
    }
    for operation in ("liveness_api_v1_health_get", "readiness_api_v1_health_ready_get")
}

#: Statuses an operation documents that the server never answers it, by ``operationId``,
#: with the reason: they get no example (the route's declaration is what to correct).
UNANSWERED: Final[dict[str, dict[str, str]]] = {
    "estimate_payment_api_v1_payments_estimate_get": {"403": "any key of any scope may call it"},
    "list_payment_requests_api_v1_payments_request_get": {
        "403": "any key of any scope may call it (others' requests are not listed)"
    },
    "get_payment_request_api_v1_payments_request__request_id__get": {
        "403": "any key of any scope may call it (another owner's request is a 404)"
    },
    "list_audit_records_api_v1_audit_get": {
        "404": "a cursor this API did not write is a 422 validation_error"
    },
}

_BODY_TOO_LARGE = _plain_problem(
    413, "body_too_large", "Request body too large", "The request body is larger than 1048576 bytes"
)
_INTERNAL = _plain_problem(
    500,
    "internal_error",
    "Internal server error",
    "An internal error occurred. Quote the request_id when reporting it.",
)
_INVALID_FRAMING = _plain_problem(
    400,
    "invalid_framing",
    "Invalid message framing",
    "A request may carry Content-Length or Transfer-Encoding, not both",
)
_INVALID_JSON = problem_example(
    InvalidJson(
        "body: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        param="body",
    )
)
_INVALID_IDEMPOTENCY_KEY = problem_example(
    InvalidIdempotencyKey(
        "Idempotency-Key must be 1 to 255 printable ASCII characters", param="Idempotency-Key"
    )
)
_IDEMPOTENCY_KEY_FORBIDDEN = problem_example(
    IdempotencyKeyForbidden(
        "This Idempotency-Key was used by a request this API key could not have made; send "
        "another key",
        param="Idempotency-Key",
    )
)
_MISSING_KEY = problem_example(InvalidApiKey(missing=True))
_INVALID_DRY_RUN = problem_example(
    InvalidDryRun('Dry-Run must be "true" or "false"', param=DRY_RUN_HEADER)
)
_AGENT_KEY_NOT_ALLOWED = problem_example(
    AgentKeyNotAllowed(
        f"Only owner keys may call this route; this key is restricted to agent {AGENT_ID}"
    )
)
_RATE_LIMITED = problem_example(
    RateLimited("Rate limit of 300 requests exceeded for this API key; retry after the reset time")
)


def _unstorable(name: str, where: str) -> dict[str, Json]:
    return problem_example(
        UnstorableText(
            f"{name}: the {where} parameter must not contain the NUL character (U+0000)",
            param=name,
        )
    )


def shared_errors(operation: dict[str, Json], access: Access | None) -> list[dict[str, Json]]:
    """The problems the shared machinery answers for ``operation``, whose route declares
    ``access`` (which keys may call it), at least one for each status it documents from
    that machinery (``app.api.openapi``)."""
    located = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
    idempotent = ("Idempotency-Key", "header") in located
    body = "requestBody" in operation
    needs_key = access is not None and bool(access.kinds)
    errors = [_INTERNAL, _BODY_TOO_LARGE]
    if idempotent:
        errors += [_INVALID_IDEMPOTENCY_KEY, _IN_USE_EXAMPLE, _IDEMPOTENCY_KEY_FORBIDDEN]
    else:
        # Any request may be refused so (``FramingMiddleware``); with an Idempotency-Key,
        # a malformed key is the 400 worth showing.
        errors.append(_INVALID_FRAMING)
    if (DRY_RUN_HEADER, "header") in located:
        errors.append(_INVALID_DRY_RUN)
    if access is not None and access.kinds:
        errors += [_MISSING_KEY, _RATE_LIMITED]
        if access.scopes:
            errors.append(
                problem_example(
                    InsufficientScope(f"this API key lacks the {access.scopes[0].value} scope")
                )
            )
        if KeyKind.agent not in access.kinds:
            errors.append(_AGENT_KEY_NOT_ALLOWED)
    if needs_key and "502" in operation.get("responses", {}):
        # The routes that call Sequence: they need a connection, and Sequence may fail.
        errors += [problem_example(_NOT_CONNECTED), problem_example(_UPSTREAM)]
    errors += [
        problem_example(NOT_FOUND_BY_PARAMETER[name])
        for name, where in located
        if where in ("path", "query") and name in NOT_FOUND_BY_PARAMETER
    ]
    if body:
        errors.append(_INVALID_JSON)
    else:
        # Every route refuses a parameter PostgreSQL cannot store, declared or not.
        first = next(((n, w) for n, w in located if w in ("path", "query")), ("q", "query"))
        errors.append(_unstorable(*first))
    return errors


# --- attaching them ---------------------------------------------------------------------

_COMPONENT_PREFIX: Final = "#/components/schemas/"
_PROBLEM_REF: Final = {"$ref": f"{_COMPONENT_PREFIX}Problem"}


def _component_of(schema: dict[str, Json]) -> tuple[str, bool] | None:
    """The component ``schema`` stands for, and whether it is a list of it: a ``$ref``,
    an ``anyOf`` of one ``$ref`` and ``null`` (an optional body), or an array of either."""
    if schema.get("type") == "array":
        found = _component_of(schema.get("items", {}))
        return None if found is None or found[1] else (found[0], True)
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_COMPONENT_PREFIX), False
    refs = [option for option in schema.get("anyOf", []) if "$ref" in option]
    return _component_of(refs[0]) if len(refs) == 1 else None


def _schema_example(schema: dict[str, Json]) -> Json | None:
    found = _component_of(schema)
    if found is None or found[0] not in SCHEMA_EXAMPLES:
        return None
    example = SCHEMA_EXAMPLES[found[0]]
    return [example] if found[1] else example


def _twin(table: dict[str, _T], operation_id: str) -> _T | None:
    """``table``'s entry for ``operation_id``, or, for an operation of the seed gateway's
    own paths (``/api/pods``… serve the handlers of ``/api/v1/sequence``), its twin's."""
    if operation_id in table:
        return table[operation_id]
    if operation_id.count("_api_") == 1 and "_api_v1_" not in operation_id:
        return table.get(operation_id.replace("_api_", "_api_v1_sequence_", 1))
    return None


def request_examples(operation_id: str, schema: dict[str, Json]) -> dict[str, Json]:
    """The request examples of an operation by name: ``OPERATION_EXAMPLES``' ``"requests"``
    (several), else ``{"example": …}`` from its ``"request"`` or from ``schema``'s
    component, else none."""
    own = _twin(OPERATION_EXAMPLES, operation_id) or {}
    if "requests" in own:
        return dict(own["requests"])
    example = own.get("request", _schema_example(schema))
    return {} if example is None else {"example": example}


def response_example(operation_id: str, status: str, schema: dict[str, Json]) -> Json | None:
    """The example of an operation's 2xx response: its own, else its schema's."""
    own = _twin(OPERATION_EXAMPLES, operation_id) or {}
    return own.get(status, _schema_example(schema))


def error_examples(
    operation_id: str, shared: list[dict[str, Json]]
) -> dict[str, dict[str, dict[str, Json]]]:
    """The problem examples of an operation, by status then by name (the ``code``; a
    second example of one code is named by its ``param`` too): its own
    (``OPERATION_ERRORS``), then the shared ones whose code it has no example of."""
    by_status: dict[str, dict[str, dict[str, Json]]] = {}
    own = _twin(OPERATION_ERRORS, operation_id) or []
    for is_own, examples in ((True, own), (False, shared)):
        for example in examples:
            named = by_status.setdefault(str(example["status"]), {})
            name = str(example["code"])
            if name in named:
                if not is_own:
                    continue
                name = f"{name} ({example.get('param') or len(named)})"
            named[name] = {"value": example}
    return by_status


def attach_examples(schema: dict[str, Json], access: dict[str, Access | None]) -> None:
    """Attach this module's examples to ``schema`` (the OpenAPI document, changed in
    place): to the components, to each operation's request body and responses, and add
    ``EXTRA_RESPONSES``. ``access`` maps operationIds to who may call them."""
    components: dict[str, Json] = schema.get("components", {}).get("schemas", {})
    for name, example in SCHEMA_EXAMPLES.items():
        if name in components:
            components[name]["examples"] = [deepcopy(example)]
    if "Problem" in components:
        components["Problem"]["examples"] = [problem_example(_AGENT_NOT_FOUND)]
    for path, item in schema.get("paths", {}).items():
        error_type = "application/json" if _seed_path(path) else PROBLEM_JSON
        for operation in item.values():
            operation_id: str = operation.get("operationId", "")
            responses: dict[str, Json] = operation.setdefault("responses", {})
            for status, description in EXTRA_RESPONSES.get(operation_id, {}).items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {error_type: {"schema": _PROBLEM_REF}}},
                )
            for media in operation.get("requestBody", {}).get("content", {}).values():
                examples = request_examples(operation_id, media.get("schema", {}))
                if list(examples) == ["example"]:
                    media["example"] = deepcopy(examples["example"])
                elif examples:
                    media["examples"] = {n: {"value": deepcopy(v)} for n, v in examples.items()}
            shared = shared_errors(operation, access.get(operation_id))
            errors = error_examples(operation_id, shared)
            for status in UNANSWERED.get(operation_id, {}):
                errors.pop(status, None)
            for status, response in responses.items():
                for media in (response.get("content") or {}).values():
                    if status.startswith("2"):
                        example = response_example(operation_id, status, media.get("schema", {}))
                        if example is not None:
                            media["example"] = deepcopy(example)
                    elif status in errors:
                        media["examples"] = deepcopy(errors[status])


def _seed_path(path: str) -> bool:
    return path.startswith(SEED_GATEWAY_PREFIX) and not path.startswith("/api/v1/")


def operation_access(app: FastAPI) -> dict[str, Access | None]:
    """Who may call each operation of ``app``, by operationId."""
    found: dict[str, Access | None] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            route: Any = context  # a RouteContext reads as its effective APIRoute
            found[route.operation_id or route.unique_id] = access_of(route.dependant)
    return found


def install_examples(app: FastAPI) -> None:
    """Make ``app.openapi()`` return its document with the examples attached, once per
    document (``app.openapi`` builds it once and returns it thereafter)."""
    generate: Callable[[], dict[str, Json]] = app.openapi
    done: list[dict[str, Json]] = []

    def openapi() -> dict[str, Json]:
        document = generate()
        if not any(seen is document for seen in done):
            attach_examples(document, operation_access(app))
            done.append(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
