"""Limit state in wallet responses (``limits``: ``limit``, ``used``, ``remaining``,
``resets_at`` per configured limit), held to its promise: ``remaining`` is exactly what the
next payment may spend, and ``resets_at`` is when the window really starts again in the
limits time zone's calendar. Through the API, against the real database, with the app's
injectable clock where time matters."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.domain.apikey.schemas import Scope
from app.kit.time import utc_now
from tests.api.helpers import MakeKey, bearer
from tests.api.payment_helpers import create_agent, create_merchant, wallet_of

PAY = "/api/v1/payments"
HOLDS = "/api/v1/payments/holds"
#: The wallet response's name of each limit, and the field that sets it.
FIELDS = {
    "per_tx": "limit_per_tx",
    "daily": "limit_daily",
    "weekly": "limit_weekly",
    "monthly": "limit_monthly",
    "total": "limit_total",
}
WINDOWS = ("daily", "weekly", "monthly")
CENT = Decimal("0.01")

Owner = dict[str, Any]


@contextmanager
def clock_and_zone(app: FastAPI, moment: datetime, zone: str | None = None) -> Iterator[Any]:
    """Run the session app at ``moment`` (movable: set ``.now`` on the yielded clock) and,
    with ``zone``, with that limits time zone (as ``PURSER_LIMITS_TIMEZONE`` would)."""

    class Clock:
        now = moment

        def __call__(self) -> datetime:
            return self.now

    saved_clock, saved_settings = app.state.clock, app.state.settings
    clock = Clock()
    app.state.clock = clock
    if zone is not None:
        app.state.settings = saved_settings.model_copy(update={"limits_timezone": zone})
    try:
        yield clock
    finally:
        app.state.clock, app.state.settings = saved_clock, saved_settings


async def new_owner(
    client: httpx.AsyncClient, make_key: MakeKey, balance: str = "1000.00", **limits: str
) -> Owner:
    key = await make_key(scopes=list(Scope))
    headers = bearer(key)
    agent = await create_agent(client, headers, initial_balance=balance, **limits)
    merchant = await create_merchant(client, headers)
    return {
        "headers": headers,
        "agent_id": agent["agent"]["agent_id"],
        "merchant_id": merchant["merchant_id"],
        "created": agent,
    }


async def pay(client: httpx.AsyncClient, o: Owner, amount: Decimal | str) -> httpx.Response:
    body = {"agent_id": o["agent_id"], "merchant_id": o["merchant_id"], "amount": str(amount)}
    return await client.post(PAY, json=body, headers=o["headers"])


async def hold(client: httpx.AsyncClient, o: Owner, amount: Decimal | str) -> httpx.Response:
    body = {
        "agent_id": o["agent_id"],
        "merchant_id": o["merchant_id"],
        "amount": str(amount),
        "expires_in_minutes": 1440,
    }
    return await client.post(HOLDS, json=body, headers=o["headers"])


async def limits_of(client: httpx.AsyncClient, o: Owner) -> dict[str, dict[str, Any]]:
    limits: dict[str, dict[str, Any]] = (await wallet_of(client, o["headers"], o["agent_id"]))[
        "limits"
    ]
    return limits


def spendable(limits: dict[str, dict[str, Any]]) -> Decimal:
    """What the limits let the next payment spend: the least ``remaining``."""
    return min(Decimal(state["remaining"]) for state in limits.values())


async def assert_remaining_is_exact(client: httpx.AsyncClient, o: Owner) -> Decimal:
    """A cent more than the least ``remaining`` is refused by a limit (and changes
    nothing); returns that least ``remaining``, which the caller may then spend."""
    limits = await limits_of(client, o)
    least = spendable(limits)
    refused = await pay(client, o, least + CENT)
    assert refused.status_code == 400, (limits, refused.text)
    assert refused.json()["code"] == "limit_exceeded", refused.text
    assert await limits_of(client, o) == limits  # a refusal counts nothing
    return least


# --- which limits are shown ----------------------------------------------------------------


async def test_the_wallet_shows_each_configured_limit_and_only_those(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    o = await new_owner(client, make_key)
    assert o["created"]["wallet"]["limits"] == {}
    assert await limits_of(client, o) == {}
    url = f"/api/v1/agents/{o['agent_id']}/wallet/limits"
    values = {"per_tx": "5.00", "daily": "10.00", "weekly": "20.00", "monthly": "30.00"}
    values["total"] = "40.00"
    patched = await client.patch(
        url, json={FIELDS[name]: value for name, value in values.items()}, headers=o["headers"]
    )
    assert patched.status_code == 200, patched.text
    shown = patched.json()["limits"]
    assert list(shown) == list(FIELDS)
    for name, value in values.items():
        assert shown[name]["limit"] == value
        assert shown[name]["used"] == "0.00"
        assert shown[name]["remaining"] == value
        assert (shown[name]["resets_at"] is None) is (name in ("per_tx", "total"))
    assert await limits_of(client, o) == shown
    cleared = await client.patch(url, json={"limit_daily": None}, headers=o["headers"])
    assert "daily" not in cleared.json()["limits"]
    assert set(await limits_of(client, o)) == set(FIELDS) - {"daily"}


async def test_a_limit_lowered_below_what_is_used_shows_nothing_remaining(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    o = await new_owner(client, make_key, limit_daily="20.00", limit_total="20.00")
    assert (await pay(client, o, "15.00")).status_code == 200
    lowered = await client.patch(
        f"/api/v1/agents/{o['agent_id']}/wallet/limits",
        json={"limit_daily": "10.00", "limit_total": "12.00"},
        headers=o["headers"],
    )
    limits = lowered.json()["limits"]
    assert (limits["daily"]["used"], limits["daily"]["remaining"]) == ("15.00", "0.00")
    assert (limits["total"]["used"], limits["total"]["remaining"]) == ("15.00", "0.00")
    assert (await pay(client, o, "0.01")).json()["code"] == "limit_exceeded"


async def test_a_limit_set_after_spending_counts_what_its_window_already_spent(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    o = await new_owner(client, make_key)
    assert (await pay(client, o, "15.00")).status_code == 200
    held = await hold(client, o, "5.00")
    assert held.status_code == 201, held.text
    patched = await client.patch(
        f"/api/v1/agents/{o['agent_id']}/wallet/limits",
        json={"limit_daily": "30.00", "limit_monthly": "25.00", "limit_total": "100.00"},
        headers=o["headers"],
    )
    limits = patched.json()["limits"]
    assert {name: state["used"] for name, state in limits.items()} == {
        "daily": "20.00",
        "monthly": "20.00",
        "total": "20.00",
    }
    assert await assert_remaining_is_exact(client, o) == Decimal("5.00")


# --- remaining is what the next payment may spend -------------------------------------------


@pytest.mark.parametrize("name", list(FIELDS))
async def test_a_payment_of_exactly_remaining_passes_and_a_cent_more_is_refused(
    client: httpx.AsyncClient, make_key: MakeKey, name: str
) -> None:
    o = await new_owner(client, make_key, **{FIELDS[name]: "10.00"})
    assert (await pay(client, o, "3.35")).status_code == 200
    state = (await limits_of(client, o))[name]
    expected_used = "0.00" if name == "per_tx" else "3.35"
    assert (state["limit"], state["used"]) == ("10.00", expected_used)
    assert Decimal(state["remaining"]) == Decimal("10.00") - Decimal(expected_used)

    least = await assert_remaining_is_exact(client, o)
    assert least == Decimal(state["remaining"])
    exact = await pay(client, o, least)
    assert exact.status_code == 200, exact.text
    after = (await limits_of(client, o))[name]
    if name == "per_tx":
        # Each payment on its own: the next may spend the whole limit again.
        assert (after["used"], after["remaining"]) == ("0.00", "10.00")
        assert (await pay(client, o, "10.00")).status_code == 200
    else:
        assert (after["used"], after["remaining"]) == ("10.00", "0.00")
        refused = await pay(client, o, "0.01")
        assert refused.json()["code"] == "limit_exceeded"


async def test_pending_holds_count_and_voids_partial_captures_and_refunds_give_back(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    o = await new_owner(
        client,
        make_key,
        limit_daily="50.00",
        limit_weekly="60.00",
        limit_monthly="70.00",
        limit_total="80.00",
    )
    headers = o["headers"]
    counted = ("daily", "weekly", "monthly", "total")

    async def used() -> set[str]:
        limits = await limits_of(client, o)
        return {limits[name]["used"] for name in counted}

    first = (await hold(client, o, "20.00")).json()["hold_id"]
    assert await used() == {"20.00"}
    await assert_remaining_is_exact(client, o)
    assert (await client.post(f"{HOLDS}/{first}/void", headers=headers)).status_code == 200
    assert await used() == {"0.00"}

    second = (await hold(client, o, "30.00")).json()["hold_id"]
    captured = await client.post(
        f"{HOLDS}/{second}/capture", json={"amount": "12.50"}, headers=headers
    )
    assert captured.status_code == 200, captured.text
    assert await used() == {"12.50"}  # the uncaptured 17.50 is given back
    paid = (await pay(client, o, "10.00")).json()["transaction"]["tx_id"]
    assert await used() == {"22.50"}
    refunded = await client.post(f"{PAY}/{paid}/refund", json={"amount": "4.00"}, headers=headers)
    assert refunded.status_code == 201, refunded.text
    assert await used() == {"18.50"}
    capture_tx = captured.json()["capture_tx_id"]
    refunded = await client.post(
        f"{PAY}/{capture_tx}/refund", json={"amount": "2.50"}, headers=headers
    )
    assert refunded.status_code == 201, refunded.text
    assert await used() == {"16.00"}
    least = await assert_remaining_is_exact(client, o)
    assert least == Decimal("34.00")  # the daily limit binds: 50.00 - 16.00
    assert (await pay(client, o, least)).status_code == 200
    assert (await pay(client, o, CENT)).json()["code"] == "limit_exceeded"


async def test_refunding_a_hold_placed_yesterday_gives_back_yesterdays_window_not_todays(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    o = await new_owner(client, make_key, limit_daily="50.00")
    headers = o["headers"]
    # The real clock throughout but for the hold: placed a minute before today began (UTC,
    # the session's limits time zone), so that it is still pending (1440 minutes) today.
    today = datetime.combine(utc_now().date(), datetime.min.time(), tzinfo=UTC)
    with clock_and_zone(app, today - timedelta(minutes=1)):
        held = (await hold(client, o, "40.00")).json()
    captured = await client.post(f"{HOLDS}/{held['hold_id']}/capture", headers=headers)
    assert captured.status_code == 200, captured.text
    assert (await limits_of(client, o))["daily"]["used"] == "0.00"  # counted yesterday
    assert (await pay(client, o, "50.00")).status_code == 200
    assert (await limits_of(client, o))["daily"]["remaining"] == "0.00"
    refund = await client.post(f"{PAY}/{captured.json()['capture_tx_id']}/refund", headers=headers)
    assert refund.status_code == 201, refund.text
    # Today's 50.00 were spent today: nothing of today's limit comes back, and 40.00 more
    # today would make 90.00 spent today against a daily limit of 50.00.
    daily = (await limits_of(client, o))["daily"]
    overspend = await pay(client, o, "40.00")
    assert overspend.status_code == 400, (daily, overspend.json()["transaction"])
    assert (daily["used"], daily["remaining"]) == ("50.00", "0.00"), daily


# --- resets_at ---------------------------------------------------------------------------


def first_instant_on(target: date, tz: ZoneInfo, after: datetime) -> datetime:
    """The first whole minute after ``after`` whose date in ``tz`` is ``target`` or later:
    found by bisection over UTC minutes, independently of how the API computes it."""
    low = after.replace(second=0, microsecond=0)
    high = low + timedelta(days=40)
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) // 2
        middle = middle.replace(second=0, microsecond=0)
        if middle.astimezone(tz).date() >= target:
            high = middle
        else:
            low = middle
    return high


def expected_resets(now: datetime, tz: ZoneInfo) -> dict[str, datetime]:
    today = now.astimezone(tz).date()
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    targets = {
        "daily": today + timedelta(days=1),
        "weekly": today + timedelta(days=7 - today.weekday()),
        "monthly": next_month,
    }
    return {name: first_instant_on(day, tz, now).astimezone(tz) for name, day in targets.items()}


RESET_CASES = [
    # The week ends across the start of daylight saving time (8 March 2026).
    ("America/New_York", datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
    # 23:59 on the 10th in New York is already the 11th in UTC.
    ("America/New_York", datetime(2026, 3, 11, 3, 59, tzinfo=UTC)),
    # A second before the new year in Tokyo.
    ("Asia/Tokyo", datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC)),
    # Monday 00:00 in India: the week started now, it resets next Monday.
    ("Asia/Kolkata", datetime(2026, 11, 29, 18, 30, tzinfo=UTC)),
    # Chile's clocks jump from 24:00 to 01:00 on 6 September 2026: no local midnight.
    ("America/Santiago", datetime(2026, 9, 5, 12, 0, tzinfo=UTC)),
    # UTC+14: already March there.
    ("Pacific/Kiritimati", datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),
    # A leap day.
    ("UTC", datetime(2028, 2, 28, 23, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(
    ("zone", "now"), RESET_CASES, ids=[f"{z}-{n:%m%d}" for z, n in RESET_CASES]
)
async def test_resets_at_is_when_the_window_starts_again_in_the_limits_time_zone(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey, zone: str, now: datetime
) -> None:
    tz = ZoneInfo(zone)
    expected = expected_resets(now, tz)
    with clock_and_zone(app, now, zone) as clock:
        o = await new_owner(
            client, make_key, limit_daily="10.00", limit_weekly="20.00", limit_monthly="30.00"
        )
        assert (await pay(client, o, "1.00")).status_code == 200
        limits = await limits_of(client, o)
        for name in WINDOWS:
            shown = datetime.fromisoformat(limits[name]["resets_at"])
            assert shown == expected[name], (name, limits[name]["resets_at"], expected[name])
            if zone != "America/Santiago":  # see the test after this one
                # Written in the zone's calendar: the offset the zone has at that instant.
                assert shown.utcoffset() == expected[name].utcoffset(), (name, shown)
        # Each window really starts again then: used until the instant before, not after
        # (arithmetic in UTC: an aware datetime of a zone adds wall-clock time).
        instants = {t.astimezone(UTC) for t in expected.values()}
        for moment in sorted({t + delta for t in instants for delta in (-_TICK, _TICK0)}):
            clock.now = moment
            limits = await limits_of(client, o)
            for name in WINDOWS:
                used = "1.00" if moment < expected[name] else "0.00"
                assert limits[name]["used"] == used, (name, moment, limits[name])
        # With every window new, the least remaining (the daily 10.00) is spendable.
        assert await assert_remaining_is_exact(client, o) == Decimal("10.00")
        assert (await pay(client, o, "10.00")).status_code == 200


_TICK = timedelta(microseconds=1)
_TICK0 = timedelta(0)


async def test_resets_at_on_a_day_without_midnight_is_written_as_the_zone_reads_it(
    app: FastAPI, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    zone, now = "America/Santiago", datetime(2026, 9, 5, 12, 0, tzinfo=UTC)
    with clock_and_zone(app, now, zone):
        o = await new_owner(client, make_key, limit_daily="10.00")
        shown = (await limits_of(client, o))["daily"]["resets_at"]
    assert datetime.fromisoformat(shown) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert shown in ("2026-09-06T01:00:00-03:00", "2026-09-06T04:00:00Z"), shown


# --- property: remaining stays exact through any history ----------------------------------

_amounts = st.integers(min_value=1, max_value=2500).map(lambda cents: Decimal(cents) / 100)
_limit = st.one_of(st.none(), st.integers(min_value=100, max_value=3000))
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), _amounts),
        st.tuples(st.just("hold"), _amounts),
        st.tuples(st.just("void"), st.integers(0, 5)),
        st.tuples(st.just("capture"), st.integers(0, 5), st.integers(0, 100)),
        st.tuples(st.just("refund"), st.integers(0, 5), st.integers(0, 100)),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    limits=st.fixed_dictionaries({name: _limit for name in FIELDS}).filter(
        lambda found: any(value is not None for value in found.values())
    ),
    operations=_operations,
)
async def test_remaining_is_exactly_what_the_next_payment_may_spend_after_any_history(
    client: httpx.AsyncClient,
    make_key: MakeKey,
    limits: dict[str, int | None],
    operations: list[tuple[Any, ...]],
) -> None:
    day = utc_now().date()
    configured = {
        FIELDS[name]: str(Decimal(value) / 100) for name, value in limits.items() if value
    }
    o = await new_owner(client, make_key, **configured)
    headers = o["headers"]
    # What each counted spend stands at now (cents): a payment's amount less its refunds,
    # a pending hold's amount, a captured hold's capture less its refunds.
    counted: dict[str, int] = {}
    pending: list[str] = []
    refundable: list[str] = []
    for operation in operations:
        name = operation[0]
        if name in ("pay", "hold"):
            amount = operation[1]
            response = await (pay if name == "pay" else hold)(client, o, amount)
            assert response.status_code in (200, 201, 400), response.text
            if response.status_code == 400:
                assert response.json()["code"] == "limit_exceeded", response.text
                continue
            cents = int(amount * 100)
            if name == "pay":
                tx_id = response.json()["transaction"]["tx_id"]
                counted[tx_id] = cents
                refundable.append(tx_id)
            else:
                hold_id = response.json()["hold_id"]
                counted[hold_id] = cents
                pending.append(hold_id)
        elif name == "void" and pending:
            hold_id = pending.pop(operation[1] % len(pending))
            voided = await client.post(f"{HOLDS}/{hold_id}/void", headers=headers)
            assert voided.status_code == 200, voided.text
            counted[hold_id] = 0
        elif name == "capture" and pending:
            hold_id = pending.pop(operation[1] % len(pending))
            cents = max(1, counted[hold_id] * operation[2] // 100)
            captured = await client.post(
                f"{HOLDS}/{hold_id}/capture",
                json={"amount": str(Decimal(cents) / 100)},
                headers=headers,
            )
            assert captured.status_code == 200, captured.text
            counted[captured.json()["capture_tx_id"]] = cents
            counted[hold_id] = 0
            refundable.append(captured.json()["capture_tx_id"])
        elif name == "refund" and refundable:
            tx_id = refundable[operation[1] % len(refundable)]
            if counted[tx_id] == 0:
                continue
            cents = max(1, counted[tx_id] * operation[2] // 100)
            refunded = await client.post(
                f"{PAY}/{tx_id}/refund", json={"amount": str(Decimal(cents) / 100)}, headers=headers
            )
            assert refunded.status_code == 201, refunded.text
            counted[tx_id] -= cents

    wallet = await wallet_of(client, headers, o["agent_id"])
    shown = wallet["limits"]
    # A run across midnight UTC moved the windows under it: not this property's concern.
    assume(utc_now().date() == day)
    if "total" in shown:  # the lifetime figures the wallet has always shown agree
        assert wallet["remaining_limit"] == shown["total"]["remaining"]
        assert wallet["spent_total"] == shown["total"]["used"]
    assert set(shown) == {name for name, value in limits.items() if value}
    used = sum(counted.values())
    for name, state in shown.items():
        limit = limits[name]
        assert limit is not None
        expected_used = 0 if name == "per_tx" else used
        assert state["limit"] == f"{Decimal(limit) / 100:.2f}"
        assert state["used"] == f"{Decimal(expected_used) / 100:.2f}", (name, state, counted)
        assert state["remaining"] == f"{Decimal(max(limit - expected_used, 0)) / 100:.2f}"
    least = await assert_remaining_is_exact(client, o)
    if least > 0:
        exact = await pay(client, o, least)
        assert exact.status_code == 200, (shown, exact.text)
