"""The rules as properties: deterministic, bounded, levels and decisions as documented,
and more history of one kind never lowers a score."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.risk.rules import Attempt, Decision, History, Level, RiskRules, assess

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RULES = RiskRules()

histories = st.builds(
    History,
    payments=st.integers(0, 10_000),
    volume=st.integers(0, 10**12),
    failures=st.integers(0, 10_000),
    last_hour=st.integers(0, 500),
    last_day=st.integers(0, 5_000),
    wallet_created_at=st.integers(0, 24 * 60).map(
        lambda minutes: NOW - timedelta(hours=minutes / 30)
    ),
    is_flagged=st.booleans(),
    flag_reason=st.just("reason"),
)
attempts = st.one_of(
    st.none(),
    st.builds(
        Attempt,
        amount=st.integers(1, 10**11),
        scale=st.sampled_from([2, 6]),
        known_recipient=st.booleans(),
        authorized_recipient=st.booleans(),
        has_authorized_services=st.booleans(),
    ),
)


@given(histories, attempts)
def test_the_score_is_a_bounded_pure_function(history: History, attempt: Attempt | None) -> None:
    first = assess(history, attempt, NOW, RULES)
    assert assess(history, attempt, NOW, RULES) == first
    assert 0 <= first.score <= 100
    assert first.score == min(sum(f.points for f in first.factors), 100)
    assert len({f.name for f in first.factors}) == len(first.factors)
    assert all(f.points > 0 and f.reason for f in first.factors)
    expected_level = (
        Level.low
        if first.score < 25
        else Level.medium
        if first.score < 50
        else Level.high
        if first.score < 75
        else Level.critical
    )
    assert first.level is expected_level
    assert first.is_acceptable is (first.score < 75)
    if first.score >= RULES.block_score:
        assert first.decision is Decision.deny
    elif first.score >= RULES.review_score:
        assert first.decision is Decision.review
    else:
        assert first.decision is Decision.allow


@given(histories, attempts, st.integers(1, 100))
def test_more_velocity_never_lowers_the_score(
    history: History, attempt: Attempt | None, more: int
) -> None:
    busier = History(
        payments=history.payments,
        volume=history.volume,
        failures=history.failures,
        last_hour=history.last_hour + more,
        last_day=history.last_day + more,
        wallet_created_at=history.wallet_created_at,
        is_flagged=history.is_flagged,
        flag_reason=history.flag_reason,
    )
    assert assess(busier, attempt, NOW, RULES).score >= assess(history, attempt, NOW, RULES).score


def test_an_old_quiet_agent_paying_a_known_recipient_scores_zero() -> None:
    history = History(
        payments=100,
        volume=10_000,
        failures=0,
        last_hour=1,
        last_day=5,
        wallet_created_at=NOW - timedelta(days=30),
    )
    attempt = Attempt(
        amount=100,
        scale=2,
        known_recipient=True,
        authorized_recipient=False,
        has_authorized_services=False,
    )
    result = assess(history, attempt, NOW, RULES)
    assert (result.score, result.factors, result.decision) == (0, [], Decision.allow)
