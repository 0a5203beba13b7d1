"""Currencies, their scales, and the only conversions between decimal text and minor units.

Inside Purser every amount is an ``int`` of minor units; at the edge it is a ``Decimal``
or a decimal string. Nothing is ever rounded: input with more decimals than the currency
allows is rejected, and so are zero or negative amounts where a positive one is required.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from app.errors import ValidationFailed

#: Currency code -> number of decimal places of its minor unit.
CURRENCY_SCALES: Final[dict[str, int]] = {
    "USD": 2,
    "USDC": 6,
    "USDT": 6,
    "PYUSD": 6,
    "EURC": 6,
}

#: Largest amount accepted in one movement, in major units. It keeps every balance far
#: from the BIGINT limit (9.2e18 minor units, i.e. 9.2e12 units at scale 6).
MAX_AMOUNT_UNITS: Final[int] = 100_000_000_000


class UnknownCurrency(ValidationFailed):
    code = "unknown_currency"


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"


def scale_of(currency: str, *, param: str = "currency") -> int:
    try:
        return CURRENCY_SCALES[currency]
    except (KeyError, TypeError):
        supported = ", ".join(CURRENCY_SCALES)
        raise UnknownCurrency(
            f"{param}: unknown currency {currency!r}; supported: {supported}", param=param
        ) from None


def max_minor(currency: str) -> int:
    scale: int = scale_of(currency)
    return int(MAX_AMOUNT_UNITS * 10**scale)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        scale_of(self.currency)
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise InvalidAmount("amount must be an integer number of minor units", param="amount")

    @classmethod
    def parse(
        cls,
        value: Decimal | str | int,
        currency: str,
        *,
        param: str = "amount",
        allow_zero: bool = False,
    ) -> "Money":
        """Parse a decimal amount in major units ("15.99") exactly, or raise ``InvalidAmount``."""
        return cls(to_minor(value, currency, param=param, allow_zero=allow_zero), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-scale_of(self.currency))

    def __str__(self) -> str:
        return format_amount(self.minor, self.currency)


def to_minor(
    value: Decimal | str | int,
    currency: str,
    *,
    param: str = "amount",
    allow_zero: bool = False,
) -> int:
    """Convert a major-unit amount to minor units without rounding."""
    scale = scale_of(currency)
    if isinstance(value, float | bool):
        # Floats cannot carry money exactly; refuse them rather than guess.
        raise InvalidAmount(f"{param} must be a decimal string, not a float", param=param)
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidAmount(f"{param} is not a decimal number: {value!r}", param=param) from None
    if not amount.is_finite():
        raise InvalidAmount(f"{param} must be a finite number", param=param)
    minor = amount.scaleb(scale)
    if minor != minor.to_integral_value():
        raise InvalidAmount(
            f"{param} has more than {scale} decimal places for {currency}", param=param
        )
    result = int(minor)
    if result < 0 or (result == 0 and not allow_zero):
        raise InvalidAmount(f"{param} must be greater than zero", param=param)
    if result > max_minor(currency):
        raise InvalidAmount(
            f"{param} exceeds the maximum of {MAX_AMOUNT_UNITS} {currency}", param=param
        )
    return result


def format_amount(minor: int, currency: str) -> str:
    """Render minor units as a decimal string with at least two decimals ("100.00", "0.000001")."""
    scale = scale_of(currency)
    text = f"{Decimal(minor).scaleb(-scale):f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        return f"{whole}.{frac}"
    return f"{text}.00"
