import re
import sys
import time
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.kit.money import (
    AMOUNT_OR_ZERO_PATTERN,
    AMOUNT_PATTERN,
    MAX_AMOUNT_TEXT,
    POSITIVE_AMOUNT_PATTERN,
    InvalidAmount,
    Money,
    UnknownCurrency,
    amount_text_error,
    format_amount,
    to_minor,
)

#: Every family of decimal digits in Unicode's Nd category except ASCII, as its ten
#: digits 0-9 (found by scanning the code space, so a new Unicode version adds its own).
_NON_ASCII_DIGIT_FAMILIES: list[str] = [
    "".join(chr(zero + value) for value in range(10))
    for zero in range(0x80, sys.maxunicode + 1)
    if unicodedata.category(chr(zero)) == "Nd" and unicodedata.digit(chr(zero), None) == 0
]


def test_there_are_many_digit_families_to_refuse() -> None:
    # Arabic-Indic, Devanagari, full-width, mathematical bold … (over 60 in Unicode 15).
    assert len(_NON_ASCII_DIGIT_FAMILIES) > 50


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("15.99", "USDC", 15_990_000),
        ("15.99", "USD", 1599),
        ("0.000001", "USDC", 1),
        ("15.990000", "USD", 1599),
        ("007.50", "USD", 750),
        ("100000000000", "USD", 10_000_000_000_000),
        (Decimal("100"), "EURC", 100_000_000),
    ],
)
def test_parses_exactly(value: str | Decimal, currency: str, minor: int) -> None:
    assert to_minor(value, currency) == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "5.",
        ".5",
        "1.2.3",
        "1e3",
        "1E3",
        "1e400000",
        "1e1000000",
        "-1",
        "+1",
        " 7.5",
        "7.5 ",
        "7.5\n",
        "\t7",
        "1_000",
        "1,000.00",
        "1 000",
        "1'000",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "0x10",
        "5\x00",
        "5\u0660\u0660",  # Arabic-Indic zeros: 500 to Decimal()
        "\u0661\u0665.\u0669\u0669",
        "\uff11\uff10",  # full-width digits
        "5\u00a0",  # no-break space
        "\u00bd",
        "\u00b2",  # superscript two: a digit to str.isdigit, not to the grammar
        "1" * (MAX_AMOUNT_TEXT + 1),
    ],
)
def test_refuses_text_outside_the_grammar(text: str) -> None:
    assert amount_text_error(text) is not None
    with pytest.raises(InvalidAmount) as error:
        to_minor(text, "USDC", param="limit_daily")
    assert error.value.param == "limit_daily"
    assert error.value.detail.startswith("limit_daily ")


@pytest.mark.parametrize("family", _NON_ASCII_DIGIT_FAMILIES, ids=lambda f: f"U+{ord(f[0]):04X}")
def test_refuses_every_non_ascii_digit_family(family: str) -> None:
    for text in (family[5] + family[0] + family[0], family[1] + "." + family[5], "1" + family[0]):
        assert amount_text_error(text) is not None, text
        with pytest.raises(InvalidAmount):
            to_minor(text, "USD")


@pytest.mark.parametrize("value", [15.99, 5.0000000000000001, 10, True, None, ["1"], {"a": 1}])
def test_refuses_anything_but_a_string(value: object) -> None:
    reason = amount_text_error(value)
    assert reason is not None
    assert "decimal string" in reason


def test_a_huge_amount_costs_no_parsing() -> None:
    # The length is checked before the pattern runs and before Decimal() sees the text:
    # a 10,000-character amount is refused by the length rule …
    huge = "9" * 10_000
    assert amount_text_error(huge) == f"must be at most {MAX_AMOUNT_TEXT} characters"
    # … in constant time: 1,000 refusals take far less than a millisecond each.
    started = time.perf_counter()
    for _ in range(1_000):
        amount_text_error(huge)
    assert (time.perf_counter() - started) / 1_000 < 0.001


@pytest.mark.parametrize(
    ("value", "currency", "fragment"),
    [
        ("0.0000001", "USDC", "more than 6 decimal places"),
        ("15.999", "USD", "more than 2 decimal places"),
        ("0", "USD", "greater than zero"),
        ("0.00", "USD", "greater than zero"),
        ("-1.00", "USD", "ASCII digits"),
        ("NaN", "USD", "ASCII digits"),
        ("abc", "USD", "ASCII digits"),
        ("100000000001", "USD", "exceeds the maximum"),
        ("99999999999999999999999999999999999999", "USDC", "exceeds the maximum"),
    ],
)
def test_rejects_bad_amounts_naming_the_field(value: str, currency: str, fragment: str) -> None:
    with pytest.raises(InvalidAmount) as error:
        to_minor(value, currency, param="limit_per_tx")
    assert fragment in error.value.detail
    assert error.value.param == "limit_per_tx"
    assert error.value.detail.startswith("limit_per_tx")


def test_refuses_floats() -> None:
    with pytest.raises(InvalidAmount, match="not a float"):
        to_minor(0.1, "USD")  # type: ignore[arg-type]


def test_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency) as error:
        Money.parse("1.00", "DOGE")
    assert error.value.code == "unknown_currency"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (100_000_000, "USDC", "100.00"),
        (15_990_000, "USDC", "15.99"),
        (1, "USDC", "0.000001"),
        (1599, "USD", "15.99"),
        (0, "USD", "0.00"),
        (-1_500_000, "USDT", "-1.50"),
    ],
)
def test_formats_with_at_least_two_decimals(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text
    assert to_minor(text.lstrip("-"), currency, allow_zero=True) == abs(minor)


#: Money text with at most 6 decimals (so the scale never decides), around the range edges.
_amount_texts = st.builds(
    lambda zeros, whole, frac: "0" * zeros + whole + (f".{frac}" if frac else ""),
    st.integers(0, 3),
    st.one_of(
        st.integers(0, 10**12).map(str),
        st.sampled_from(["0", "99999999999", "100000000000", "100000000001"]),
    ),
    st.one_of(st.none(), st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
)


@given(_amount_texts)
@example("100000000000.000000")
@example("100000000000.000001")
@example("0.000001")
@example("000.000000")
def test_openapi_patterns_state_exactly_what_is_accepted(text: str) -> None:
    # OpenAPI narrows the grammar to each field's range; the code decides. They must agree
    # on every text of the grammar the currency's scale does not decide.
    assert re.fullmatch(AMOUNT_PATTERN.strip("^$"), text)

    def accepted(allow_zero: bool) -> bool:
        try:
            to_minor(text, "USDC", allow_zero=allow_zero)
        except InvalidAmount:
            return False
        return True

    assert bool(re.match(POSITIVE_AMOUNT_PATTERN, text)) == accepted(allow_zero=False)
    assert bool(re.match(AMOUNT_OR_ZERO_PATTERN, text)) == accepted(allow_zero=True)
