"""The risk rules: a pure function of an agent's stored history, the attempt and the clock.

Each rule returns its points, a factor name and a reason; the score is their sum capped
at 100. Levels: low < 25 ≤ medium < 50 ≤ high < 75 ≤ critical; ``is_acceptable`` = score
< 75 (seed ``003`` "Risk & Authorization"). The decision of an attempt: ``deny`` at
``block_score`` or more, ``review`` at ``review_score`` or more, else ``allow``. Nothing
here reads the database or writes: reading a score twice gives the same score (no
ratchet), and the same history and clock give the same score.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

MAX_SCORE: Final = 100


class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Decision(StrEnum):
    allow = "allow"
    review = "review"
    deny = "deny"


@dataclass(frozen=True, slots=True)
class RiskRules:
    """Thresholds and points of every rule (settings ``PURSER_RISK_*``; README table).
    Amounts are whole units of the payment's currency."""

    block_score: int = 90
    review_score: int = 50
    velocity_per_hour: int = 20
    velocity_per_day: int = 100
    large_amount: int = 100
    very_large_amount: int = 500
    anomaly_multiple: int = 5
    anomaly_min_history: int = 10
    failure_ratio_percent: int = 30
    failure_min_attempts: int = 5
    young_wallet_hours: int = 24
    points_velocity_hour: int = 30
    points_velocity_day: int = 20
    points_large_amount: int = 15
    points_very_large_amount: int = 30
    points_amount_anomaly: int = 15
    points_new_recipient: int = 10
    points_failure_ratio: int = 25
    points_unauthorized_recipient: int = 10
    points_young_wallet: int = 10
    #: Alone enough for ``critical`` (not acceptable): a flagged agent moves no money.
    points_flagged: int = 75


@dataclass(frozen=True, slots=True)
class History:
    """An agent's stored history as the payment path's statements keep it.

    ``payments``/``volume``: completed outflows and their amount (minor units);
    ``failures``: refused attempts; ``last_hour``/``last_day``: completed outflows in the
    sliding hour (by the minute) and day (by the hour) before ``now``."""

    payments: int
    volume: int
    failures: int
    last_hour: int
    last_day: int
    wallet_created_at: datetime
    is_flagged: bool = False
    flag_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outflow being decided: ``amount`` in minor units of a currency of ``scale``
    decimals, and what is known of its payee."""

    amount: int
    scale: int
    known_recipient: bool
    authorized_recipient: bool
    has_authorized_services: bool


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    points: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": self.points, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Assessment:
    score: int
    level: Level
    decision: Decision
    factors: list[Factor] = field(default_factory=list)

    @property
    def is_acceptable(self) -> bool:
        return self.score < 75

    def as_record(self) -> dict[str, Any]:
        """What a transaction stores and shows as ``risk``."""
        return {
            "decision": self.decision.value,
            "score": self.score,
            "level": self.level.value,
            "factors": [factor.as_dict() for factor in self.factors],
        }


def level_of(score: int) -> Level:
    if score < 25:
        return Level.low
    if score < 50:
        return Level.medium
    if score < 75:
        return Level.high
    return Level.critical


def _velocity(history: History, attempt: Attempt | None, rules: RiskRules) -> list[Factor]:
    adding = 1 if attempt is not None else 0
    found = []
    hour = history.last_hour + adding
    if hour > rules.velocity_per_hour:
        found.append(
            Factor(
                "velocity_hour",
                rules.points_velocity_hour,
                f"{hour} payments in the last hour (more than {rules.velocity_per_hour})",
            )
        )
    day = history.last_day + adding
    if day > rules.velocity_per_day:
        found.append(
            Factor(
                "velocity_day",
                rules.points_velocity_day,
                f"{day} payments in the last day (more than {rules.velocity_per_day})",
            )
        )
    return found


def _amount(history: History, attempt: Attempt, rules: RiskRules) -> list[Factor]:
    found = []
    unit = 10**attempt.scale
    if attempt.amount >= rules.very_large_amount * unit:
        found.append(
            Factor(
                "very_large_amount",
                rules.points_very_large_amount,
                f"amount at or above {rules.very_large_amount}",
            )
        )
    elif attempt.amount >= rules.large_amount * unit:
        found.append(
            Factor(
                "large_amount",
                rules.points_large_amount,
                f"amount at or above {rules.large_amount}",
            )
        )
    if (
        history.payments >= rules.anomaly_min_history
        # amount > multiple * mean, in integers: amount * payments > multiple * volume
        and attempt.amount * history.payments > rules.anomaly_multiple * history.volume
    ):
        found.append(
            Factor(
                "amount_anomaly",
                rules.points_amount_anomaly,
                f"amount more than {rules.anomaly_multiple} times the agent's average payment",
            )
        )
    return found


def _recipient(attempt: Attempt, rules: RiskRules) -> list[Factor]:
    found = []
    if not attempt.known_recipient and not attempt.authorized_recipient:
        found.append(
            Factor(
                "new_recipient",
                rules.points_new_recipient,
                "first payment to this recipient, which is not an authorized service",
            )
        )
    if attempt.has_authorized_services and not attempt.authorized_recipient:
        found.append(
            Factor(
                "unauthorized_recipient",
                rules.points_unauthorized_recipient,
                "recipient outside the agent's authorized services",
            )
        )
    return found


def _failures(history: History, rules: RiskRules) -> list[Factor]:
    attempts = history.payments + history.failures
    # failures / attempts > percent / 100, in integers
    if (
        attempts >= rules.failure_min_attempts
        and history.failures * 100 > rules.failure_ratio_percent * attempts
    ):
        return [
            Factor(
                "failure_ratio",
                rules.points_failure_ratio,
                f"{history.failures} of {attempts} attempts refused "
                f"(more than {rules.failure_ratio_percent}%)",
            )
        ]
    return []


def _young_wallet(history: History, now: datetime, rules: RiskRules) -> list[Factor]:
    if now - history.wallet_created_at < timedelta(hours=rules.young_wallet_hours):
        return [
            Factor(
                "young_wallet",
                rules.points_young_wallet,
                f"wallet younger than {rules.young_wallet_hours} hours",
            )
        ]
    return []


def assess(
    history: History, attempt: Attempt | None, now: datetime, rules: RiskRules
) -> Assessment:
    """Score ``history`` at ``now``, for ``attempt`` if given (its amount and recipient
    rules apply, and it counts in the velocity windows), else the agent alone (its flag
    then counts as a factor; an attempt of a flagged agent is refused before scoring)."""
    factors = [
        *_velocity(history, attempt, rules),
        *_failures(history, rules),
        *_young_wallet(history, now, rules),
    ]
    if attempt is not None:
        factors[1:1] = [*_amount(history, attempt, rules), *_recipient(attempt, rules)]
    elif history.is_flagged:
        factors.append(
            Factor("flagged", rules.points_flagged, f"agent flagged: {history.flag_reason}")
        )
    score = min(sum(factor.points for factor in factors), MAX_SCORE)
    if score >= rules.block_score:
        decision = Decision.deny
    elif score >= rules.review_score:
        decision = Decision.review
    else:
        decision = Decision.allow
    return Assessment(score, level_of(score), decision, factors)
