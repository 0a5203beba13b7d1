"""Wallets: the ledger accounts of an agent or merchant, their limits and virtual card."""

import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Mode
from app.domain.ledger import service as ledger
from app.domain.ledger.schemas import Leg
from app.domain.limits import service as limits_service
from app.domain.wallet import repository
from app.domain.wallet.errors import FundingNotAllowed, WalletNotFound
from app.domain.wallet.schemas import (
    LimitStateRead,
    MerchantWalletRead,
    VirtualCardRead,
    WalletLimitsUpdate,
    WalletRead,
)
from app.kit.ids import new_id
from app.kit.money import Money, format_amount, to_minor
from app.models.ledger import AccountKind, EntryKind

LIMIT_FIELDS = ("limit_per_tx", "limit_total", "limit_daily", "limit_weekly", "limit_monthly")


def _amount(minor: int | None, currency: str) -> str | None:
    return None if minor is None else format_amount(minor, currency)


async def open_agent_wallet(
    session: AsyncSession,
    *,
    owner_id: str,
    agent_id: str,
    currency: str,
    limits: dict[str, int | None],
    owner_frozen: bool = False,
) -> Row[Any]:
    """Open the wallet's available and held accounts, the wallet and its virtual card;
    ``owner_frozen``: the owner's agents are frozen (``app.domain.freeze``)."""
    available = await ledger.open_account(
        session, kind=AccountKind.wallet_available, currency=currency, owner_id=owner_id
    )
    held = await ledger.open_account(
        session, kind=AccountKind.wallet_held, currency=currency, owner_id=owner_id
    )
    wallet = await repository.insert_wallet(
        session,
        {
            "id": new_id("wallet"),
            "owner_id": owner_id,
            "agent_id": agent_id,
            "currency": currency,
            "available_account_id": available.id,
            "held_account_id": held.id,
            "owner_frozen": owner_frozen,
            **limits,
        },
    )
    now = datetime.now(UTC)
    await repository.insert_card(
        session,
        {
            "id": new_id("vc"),
            "wallet_id": wallet.id,
            # A reference to the card at an issuer; the number itself is never stored.
            "token": new_id("tok", 16),
            "last4": f"{secrets.randbelow(10_000):04d}",
            "exp_month": now.month,
            "exp_year": now.year + 3,
        },
    )
    return wallet


async def open_merchant_wallet(
    session: AsyncSession, *, owner_id: str, merchant_id: str, currency: str
) -> Row[Any]:
    account = await ledger.open_account(
        session, kind=AccountKind.merchant, currency=currency, owner_id=owner_id
    )
    return await repository.insert_wallet(
        session,
        {
            "id": new_id("wallet"),
            "owner_id": owner_id,
            "merchant_id": merchant_id,
            "currency": currency,
            "available_account_id": account.id,
        },
    )


async def fund_from_owner_deposit(
    session: AsyncSession, wallet: Row[Any], amount: Money, *, mode: Mode, reference: str
) -> None:
    """Sandbox funding: an explicit entry from the owner's deposit account. Live wallets
    are funded only through a rail."""
    if mode is not Mode.sandbox:
        raise FundingNotAllowed(
            "initial_balance must be 0 in live mode; fund wallets through a funding rail",
            param="initial_balance",
        )
    source = await ledger.open_system_account(
        session, kind=AccountKind.owner_deposit, currency=amount.currency, owner_id=wallet.owner_id
    )
    await ledger.post_entry(
        session,
        kind=EntryKind.funding,
        legs=[
            Leg(source.id, Money(-amount.minor, amount.currency)),
            Leg(wallet.available_account_id, amount),
        ],
        reference=reference,
        description="sandbox initial balance",
    )


async def get_agent_wallet(session: AsyncSession, owner_id: str, agent_id: str) -> Row[Any]:
    wallet = await repository.get_wallet(session, owner_id=owner_id, agent_id=agent_id)
    if wallet is None:
        raise WalletNotFound(f"Wallet of agent {agent_id} not found")
    return wallet


async def read_limits(
    session: AsyncSession, wallet: Row[Any], *, now: datetime, tz: ZoneInfo
) -> dict[str, LimitStateRead]:
    """Each configured limit of an agent's ``wallet`` as it stands at ``now``
    (``limits.service.state``), amounts as decimal text in the wallet's currency."""
    currency = wallet.currency
    return {
        name: LimitStateRead(
            limit=format_amount(limit.limit, currency),
            used=format_amount(limit.used, currency),
            remaining=format_amount(limit.remaining, currency),
            resets_at=limit.resets_at,
        )
        for name, limit in (await limits_service.state(session, wallet, now=now, tz=tz)).items()
    }


async def read_agent_wallet(
    session: AsyncSession, wallet: Row[Any], *, now: datetime, tz: ZoneInfo
) -> WalletRead:
    """The wallet with balances read from the ledger and its limits as they stand at
    ``now`` (windows in ``tz``'s calendar: ``limits.service.state``)."""
    currency = wallet.currency
    balances = await ledger.balances_of(
        session, [wallet.available_account_id, wallet.held_account_id]
    )
    card = await repository.get_card(session, wallet.id)
    limits = await read_limits(session, wallet, now=now, tz=tz)
    remaining = None
    if wallet.limit_total is not None:
        remaining = format_amount(max(wallet.limit_total - wallet.spent_total, 0), currency)
    return WalletRead(
        wallet_id=wallet.id,
        agent_id=wallet.agent_id,
        balance=format_amount(balances.get(wallet.available_account_id, 0), currency),
        held_balance=format_amount(balances.get(wallet.held_account_id, 0), currency),
        currency=currency,
        limit_per_tx=_amount(wallet.limit_per_tx, currency),
        limit_total=_amount(wallet.limit_total, currency),
        limit_daily=_amount(wallet.limit_daily, currency),
        limit_weekly=_amount(wallet.limit_weekly, currency),
        limit_monthly=_amount(wallet.limit_monthly, currency),
        spent_total=format_amount(wallet.spent_total, currency),
        remaining_limit=remaining,
        limits=limits,
        frozen=wallet.owner_frozen or not wallet.is_active,
        frozen_by=[
            *(["agent"] if not wallet.is_active else []),
            *(["owner"] if wallet.owner_frozen else []),
        ],
        virtual_card=None
        if card is None
        else VirtualCardRead(
            card_id=card.id, masked_number=f"**** **** **** {card.last4}", is_active=card.is_active
        ),
        is_active=wallet.is_active,
        created_at=wallet.created_at,
    )


async def get_merchant_wallet(
    session: AsyncSession, owner_id: str, merchant_id: str
) -> MerchantWalletRead:
    wallet = await repository.get_wallet(session, owner_id=owner_id, merchant_id=merchant_id)
    if wallet is None:
        raise WalletNotFound(f"Wallet of merchant {merchant_id} not found")
    balance = await ledger.balances_of(session, [wallet.available_account_id])
    return MerchantWalletRead(
        wallet_id=wallet.id,
        merchant_id=wallet.merchant_id,
        balance=format_amount(balance.get(wallet.available_account_id, 0), wallet.currency),
        currency=wallet.currency,
        is_active=wallet.is_active,
        created_at=wallet.created_at,
    )


def parse_limits(values: dict[str, Any], currency: str) -> dict[str, int | None]:
    """Limits in minor units; ``None`` stays ``None`` (no limit)."""
    return {
        field: None if value is None else to_minor(value, currency, param=field)
        for field, value in values.items()
    }


async def update_limits(
    session: AsyncSession,
    owner_id: str,
    agent_id: str,
    update: WalletLimitsUpdate,
    *,
    now: datetime,
    tz: ZoneInfo,
) -> WalletRead:
    wallet = await repository.get_wallet(
        session, owner_id=owner_id, agent_id=agent_id, for_update=True
    )
    if wallet is None:
        raise WalletNotFound(f"Wallet of agent {agent_id} not found")
    changes = parse_limits(update.model_dump(include=update.model_fields_set), wallet.currency)
    if changes:
        wallet = await repository.update_wallet(session, wallet.id, changes)
    return await read_agent_wallet(session, wallet, now=now, tz=tz)
