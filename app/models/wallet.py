from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, ModeScoped


class Wallet(ModeScoped, CreatedAt, Base):
    """A wallet of an agent or a merchant: its ledger accounts and spending limits.

    Balances are never stored here; they are read from the ledger. Limits are minor units
    of the wallet's currency, NULL meaning "no limit".
    """

    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("(agent_id IS NULL) <> (merchant_id IS NULL)", name="one_holder"),
        CheckConstraint("spent_total >= 0", name="spent_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    agent_id: Mapped[str | None] = mapped_column(String(40), ForeignKey("agents.id"), unique=True)
    merchant_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("merchants.id"), unique=True
    )
    currency: Mapped[str] = mapped_column(String(8), nullable=False)
    available_account_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), nullable=False, unique=True
    )
    held_account_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("ledger_accounts.id"), unique=True
    )
    limit_per_tx: Mapped[int | None] = mapped_column(BigInteger)
    limit_total: Mapped[int | None] = mapped_column(BigInteger)
    limit_daily: Mapped[int | None] = mapped_column(BigInteger)
    limit_weekly: Mapped[int | None] = mapped_column(BigInteger)
    limit_monthly: Mapped[int | None] = mapped_column(BigInteger)
    spent_total: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    #: Risk history of an agent's wallet (``app.domain.risk``): completed outflows, their
    #: amount (minor units, refunds not deducted), and refused attempts once the payer was
    #: known. Counted by the payment's own statements.
    risk_payments: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    risk_volume: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    risk_failures: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    #: False: the agent is frozen (``POST /agents/{id}/freeze``); its wallet moves no money.
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    #: True while the owner's agents are all frozen (``POST /freeze``): a copy of
    #: ``owner_controls.frozen_at`` on each wallet, so that the payer's lock reads it from
    #: the locked row (exact under concurrency) at no extra cost.
    owner_frozen: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")


class VirtualCard(CreatedAt, Base):
    """A wallet's virtual card: a token, the last four digits and the expiry. No card
    number and no CVV are ever stored."""

    __tablename__ = "virtual_cards"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("wallets.id"), nullable=False, unique=True
    )
    token: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    last4: Mapped[str] = mapped_column(String(4), nullable=False)
    exp_month: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    exp_year: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
