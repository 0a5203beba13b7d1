"""Runtime settings, read once from the environment (prefix ``PURSER_``)."""

import os
from dataclasses import fields
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain.risk.rules import RiskRules


class Mode(StrEnum):
    sandbox = "sandbox"
    live = "live"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PURSER_", extra="ignore")

    #: ``sandbox`` (test money, demo data) or ``live``: every row carries its mode.
    mode: Mode = Mode.sandbox
    #: Serve this mode from a database that also holds data of the other mode. Off, a
    #: server refuses to start on such a database; on, the two stay apart all the same
    #: (every row carries its mode and every query keeps to the server's).
    allow_mixed_modes: bool = False
    #: The interface ``purser serve`` listens on (``--host`` overrides).
    host: str = "127.0.0.1"
    #: The TCP port ``purser serve`` listens on (``--port`` overrides).
    port: int = Field(default=8000, ge=1, le=65535)
    #: API processes started by ``purser serve``; unset: ``default_workers()``.
    workers: int | None = Field(default=None, ge=1, le=64)
    #: Where the embedded PostgreSQL keeps its cluster when no ``DATABASE_URL`` is given.
    data_dir: Path = Path(".purser")
    #: An external PostgreSQL; when set, no embedded server is started.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PURSER_DATABASE_URL")
    )
    #: Shared rate-limit budget across API processes; in-process when unset.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "PURSER_REDIS_URL")
    )
    #: ``off`` disables API rate limiting (for benchmarks), failed-authentication
    #: throttling included.
    rate_limits: Literal["on", "off"] = "on"
    #: Failed authentications (401) a client address may have per minute; past them its
    #: attempts are 429 before any database query (keys that authenticated recently
    #: excepted). IPv6 addresses count by /64.
    auth_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    #: Failed authentications a key id may have per minute; past them the key id's attempts
    #: from addresses that failed too are 429 before any database query.
    auth_failures_per_key_id: int = Field(default=10, ge=1, le=100_000)
    #: Fernet key encrypting stored webhook secrets (required in live mode; a sandbox
    #: without one keeps a generated key in ``data_dir/secret.key``).
    secret_key: str | None = None
    #: Deliver webhooks in this process (``purser serve``); ``purser worker`` always does.
    run_webhooks: bool = True
    #: Largest request body accepted, in bytes; a larger one is a 413 before it is read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    #: Seconds a process may reuse an API key's row instead of querying it (0: query on
    #: every request). At most 1: a revocation or expiry then takes effect within 1 s in
    #: every process (and at once in the process that revoked).
    auth_cache_seconds: float = Field(default=0.0, ge=0.0, le=1.0)
    #: How long idempotency keys are remembered.
    idempotency_retention_days: int = Field(default=7, ge=1, le=90)
    #: Whether a refund returns the payment's fee (``return``, with the refund that
    #: completes the payment's refund) or the platform keeps it (``keep``).
    refund_fee_policy: Literal["keep", "return"] = "keep"
    #: Time zone of the daily/weekly/monthly spending windows.
    limits_timezone: str = "UTC"
    #: Database connections each API process keeps open.
    db_pool_size: int = Field(default=10, ge=1)
    #: Run the background work in this process: the periodic jobs (audit sealing, hold
    #: and payment-request expiry, expired idempotency keys, risk bucket pruning) and the
    #: Sequence poller; off, `purser serve` also delivers no webhooks (a `purser worker`
    #: then does all of it).
    run_jobs: bool = True

    @field_validator("limits_timezone")
    @classmethod
    def timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def limits_zone(self) -> ZoneInfo:
        return ZoneInfo(self.limits_timezone)

    @property
    def shared_rate_limits(self) -> bool:
        """Whether every API process counts against one budget (Redis, or no limits)."""
        return self.rate_limits == "off" or self.redis_url is not None

    def default_workers(self) -> int:
        """API processes when ``workers`` is unset: one per core on an external PostgreSQL
        (``DATABASE_URL``), if rate limits are shared between processes; else one (the
        embedded server is for one machine's development, and an in-process rate limit
        counted by N processes would allow N times the budget)."""
        if self.database_url and self.shared_rate_limits:
            return os.cpu_count() or 1
        return 1

    #: The Sequence rail (``app.domain.sequence``): a default Platform API connection for
    #: every owner without one of its own (a single-tenant deployment, as the seed's).
    sequence_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("SEQUENCE_API_KEY", "PURSER_SEQUENCE_API_KEY")
    )
    #: The default connection's base URL (unset: ``https://api.getsequence.io/platform/v1``).
    sequence_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SEQUENCE_BASE_URL", "PURSER_SEQUENCE_BASE_URL"),
    )
    #: ``sandbox``: owners without a key of their own use the sandbox Sequence (started by
    #: ``purser serve``); ``platform``: only real Platform API keys. Unset: sandbox in
    #: sandbox mode, platform in live mode.
    sequence_mode: Literal["sandbox", "platform"] | None = Field(
        default=None, validation_alias=AliasChoices("SEQUENCE_MODE", "PURSER_SEQUENCE_MODE")
    )
    #: Per-transfer limit of each owner's Sequence transfers, fundings included (cents);
    #: ``PUT /api/v1/sequence/limits`` overrides it per owner.
    sequence_max_transfer_cents: int = Field(
        default=1_000_000,
        ge=100,
        le=10**12,
        validation_alias=AliasChoices(
            "SEQUENCE_MAX_TRANSFER_CENTS", "PURSER_SEQUENCE_MAX_TRANSFER_CENTS"
        ),
    )
    #: Daily limit (limits time zone) of each owner's Sequence transfers (cents).
    sequence_max_daily_transfer_cents: int = Field(
        default=2_500_000,
        ge=100,
        le=10**12,
        validation_alias=AliasChoices(
            "SEQUENCE_MAX_DAILY_TRANSFER_CENTS", "PURSER_SEQUENCE_MAX_DAILY_TRANSFER_CENTS"
        ),
    )
    #: The account wallet fundings move money into (an account of the owner's Sequence
    #: organisation backing Purser's balances); unset: the one named "Purser Settlement".
    sequence_settlement_account: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SEQUENCE_SETTLEMENT_ACCOUNT_ID", "PURSER_SEQUENCE_SETTLEMENT_ACCOUNT_ID"
        ),
    )
    #: How long a transfer request waits for Sequence's final status before answering 202.
    sequence_wait_seconds: float = Field(default=5.0, ge=0, le=30)
    #: The sandbox Sequence's base URL (``…/platform/v1``): set by ``purser serve`` when
    #: it starts one, or point it at a ``purser sequence-sandbox`` of your own.
    sequence_sandbox_url: str | None = None
    #: Where ``purser serve`` runs the sandbox Sequence (0: a free port on 127.0.0.1).
    sequence_sandbox_port: int = Field(default=0, ge=0, le=65535)
    #: How long pod balances are reused per owner (Sequence's budget is 100 requests/min).
    sequence_cache_seconds: float = Field(default=10.0, ge=0, le=3600)

    @property
    def sequence_uses_sandbox(self) -> bool:
        """Whether owners without a key of their own use the sandbox Sequence."""
        if self.sequence_mode is not None:
            return self.sequence_mode == "sandbox"
        return self.mode is Mode.sandbox

    #: Risk rules (``app.domain.risk.rules.RiskRules``): thresholds, then each factor's points.
    risk_block_score: int = Field(default=90, ge=1, le=100)
    #: A payment scoring this or more is allowed, recorded as ``review`` and alerted.
    risk_review_score: int = Field(default=50, ge=1, le=100)
    #: Completed outflows in the sliding hour (by the minute) above which ``velocity_hour`` counts.
    risk_velocity_per_hour: int = Field(default=20, ge=1, le=1000000000)
    #: The same for the sliding day (by the hour): ``velocity_day``.
    risk_velocity_per_day: int = Field(default=100, ge=1, le=1000000000)
    #: Whole currency units from which ``large_amount`` counts.
    risk_large_amount: int = Field(default=100, ge=1, le=1000000000)
    #: From which ``very_large_amount`` counts instead.
    risk_very_large_amount: int = Field(default=500, ge=1, le=1000000000)
    #: ``amount_anomaly``: an amount above this many times the agent's average payment.
    risk_anomaly_multiple: int = Field(default=5, ge=1, le=1000000000)
    #: Completed payments the average needs before ``amount_anomaly`` applies.
    risk_anomaly_min_history: int = Field(default=10, ge=1, le=1000000000)
    #: ``failure_ratio``: refused attempts above this share of all attempts.
    risk_failure_ratio_percent: int = Field(default=30, ge=1, le=100)
    #: Attempts needed before ``failure_ratio`` applies.
    risk_failure_min_attempts: int = Field(default=5, ge=1, le=1000000000)
    #: ``young_wallet``: a wallet younger than this.
    risk_young_wallet_hours: int = Field(default=24, ge=1, le=1000000000)
    #: Points of the ``velocity_hour`` factor.
    risk_points_velocity_hour: int = Field(default=30, ge=0, le=100)
    #: Points of the ``velocity_day`` factor.
    risk_points_velocity_day: int = Field(default=20, ge=0, le=100)
    #: Points of the ``large_amount`` factor.
    risk_points_large_amount: int = Field(default=15, ge=0, le=100)
    #: Points of the ``very_large_amount`` factor.
    risk_points_very_large_amount: int = Field(default=30, ge=0, le=100)
    #: Points of the ``amount_anomaly`` factor.
    risk_points_amount_anomaly: int = Field(default=15, ge=0, le=100)
    #: Points of the ``new_recipient`` factor.
    risk_points_new_recipient: int = Field(default=10, ge=0, le=100)
    #: Points of the ``failure_ratio`` factor.
    risk_points_failure_ratio: int = Field(default=25, ge=0, le=100)
    #: Points of the ``unauthorized_recipient`` factor.
    risk_points_unauthorized_recipient: int = Field(default=10, ge=0, le=100)
    #: Points of the ``young_wallet`` factor.
    risk_points_young_wallet: int = Field(default=10, ge=0, le=100)
    #: Points of the ``flagged`` factor (alone enough for critical).
    risk_points_flagged: int = Field(default=75, ge=0, le=100)

    @property
    def risk_rules(self) -> RiskRules:
        """The ``risk_*`` settings as the rules read them."""
        return RiskRules(
            **{field.name: getattr(self, f"risk_{field.name}") for field in fields(RiskRules)}
        )

    #: Connections each API process may open beyond the pool under load.
    db_max_overflow: int = Field(default=10, ge=0)
    #: ``debug``, ``info``, ``warning`` or ``error``.
    log_level: str = "info"
    #: One log line per request (uvicorn's access log): off by default, it costs every
    #: request a formatted line; the request id is in every response either way.
    access_log: Literal["on", "off"] = "off"


@lru_cache
def get_settings() -> Settings:
    return Settings()
