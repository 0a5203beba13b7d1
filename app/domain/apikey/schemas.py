from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, Field

from app.kit.schemas import IdText, RequestSchema


class Scope(StrEnum):
    agents_read = "agents:read"
    agents_write = "agents:write"
    wallet_read = "wallet:read"
    payments_read = "payments:read"
    payments_write = "payments:write"
    merchants_read = "merchants:read"
    merchants_write = "merchants:write"
    catalog_read = "catalog:read"
    catalog_write = "catalog:write"
    keys_write = "keys:write"
    webhooks = "webhooks"
    audit_read = "audit:read"
    sequence = "sequence"
    """Moving the operator's bank money: never granted by default."""


#: What an owner-wide key gets unless scopes are named.
OWNER_DEFAULT_SCOPES: Final = frozenset(Scope) - {Scope.sequence}
#: What a key restricted to one agent may ever hold: read its wallet, pay, nothing else.
AGENT_SCOPES: Final = frozenset({Scope.wallet_read, Scope.payments_write})


class KeyKind(StrEnum):
    """What a key speaks for: its owner (owner-wide) or one agent (``--agent``)."""

    owner = "owner"
    agent = "agent"


class Tier(StrEnum):
    free = "free"
    standard = "standard"
    enterprise = "enterprise"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the API key on every request."""

    key_id: str
    owner_id: str
    mode: str
    scopes: frozenset[str]
    agent_id: str | None
    tier: Tier
    #: When the key stops working; ``None`` never. Keys it creates expire no later.
    expires_at: datetime | None = None
    #: How far the owner's sandbox test clock runs ahead of the server's, in seconds
    #: (``POST /test/clock/advance``; always 0 in live mode).
    clock_offset_seconds: int = 0

    @property
    def kind(self) -> KeyKind:
        return KeyKind.owner if self.agent_id is None else KeyKind.agent

    def sees_agent(self, agent_id: str) -> bool:
        return self.agent_id is None or self.agent_id == agent_id


class ApiKeyCreate(RequestSchema):
    name: str = Field(default="api key", min_length=1, max_length=100)
    agent_id: IdText | None = Field(default=None, description="Restrict the key to this agent.")
    scopes: list[Scope] | None = Field(
        default=None,
        max_length=len(Scope),
        description="Defaults: every owner scope except `sequence` (an agent key: "
        "`wallet:read`, `payments:write`), limited to those the calling key holds.",
    )
    tier: Tier = Field(
        default=Tier.standard,
        description="At most the calling key's tier; omitted: `standard`, or the caller's "
        "tier if lower.",
    )
    expires_at: datetime | None = Field(
        default=None,
        description="No later than the calling key's expiry (omitted: the caller's expiry); "
        "without a time zone, UTC.",
    )


class ApiKeyRead(BaseModel):
    key_id: str
    name: str
    owner_id: str
    agent_id: str | None
    scopes: list[str]
    tier: Tier
    mode: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The full key. Shown only once; store it safely.")
