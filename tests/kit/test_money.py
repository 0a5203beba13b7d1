from decimal import Decimal

import pytest

from app.kit.money import InvalidAmount, Money, UnknownCurrency, format_amount, to_minor


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("15.99", "USDC", 15_990_000),
        ("15.99", "USD", 1599),
        ("0.000001", "USDC", 1),
        (Decimal("100"), "EURC", 100_000_000),
        ("1e2", "USD", 10_000),
        (" 7.5 ", "USD", 750),
    ],
)
def test_parses_exactly(value: str | Decimal, currency: str, minor: int) -> None:
    assert to_minor(value, currency) == minor


@pytest.mark.parametrize(
    ("value", "currency", "fragment"),
    [
        ("0.0000001", "USDC", "more than 6 decimal places"),
        ("15.999", "USD", "more than 2 decimal places"),
        ("0", "USD", "greater than zero"),
        ("-1.00", "USD", "greater than zero"),
        ("NaN", "USD", "finite"),
        ("Infinity", "USDC", "finite"),
        ("abc", "USD", "not a decimal"),
        ("100000000001", "USD", "exceeds the maximum"),
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
