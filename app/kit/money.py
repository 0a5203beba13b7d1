"""Currencies, their scales, the one grammar of money text, and the only conversions
between decimal text and minor units.

Inside Purser every amount is an ``int`` of minor units; at the edge it is a decimal
string. **Money text** has one grammar, checked on the text before any conversion:
ASCII digits, optionally one ``.`` followed by more ASCII digits (``AMOUNT_PATTERN``),
at most ``MAX_AMOUNT_TEXT`` characters. No sign, exponent, whitespace, ``_``, separators
or non-ASCII digits; a JSON number is refused (``15.99`` has already been rounded to a
binary float by the JSON parser), so is anything but a string. Nothing is ever rounded:
input with more decimals than the currency allows is rejected, and so are zero or
negative amounts where a positive one is required.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, WithJsonSchema

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


#: Longest money text accepted: bounds the work any input can cost (the largest amount,
#: 100 billion at scale 6 with trailing zeros, fits many times over).
MAX_AMOUNT_TEXT: Final[int] = 40
#: The grammar of money text, as OpenAPI documents it.
AMOUNT_PATTERN: Final[str] = r"^[0-9]+(\.[0-9]+)?$"
# ``re.ASCII`` keeps ``[0-9]`` to ASCII (it already is, but the flag states the intent).
_AMOUNT_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


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


def amount_text_error(value: object) -> str | None:
    """Why ``value`` is not money text, or ``None`` when it is (the module's grammar).

    Constant work per call: the length is checked before the pattern runs.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float):
            return 'must be a decimal string such as "15.99", not a JSON number'
        return 'must be a decimal string such as "15.99"'
    if len(value) > MAX_AMOUNT_TEXT:
        return f"must be at most {MAX_AMOUNT_TEXT} characters"
    if _AMOUNT_TEXT.fullmatch(value) is None:
        return (
            "must be ASCII digits with an optional '.' and more digits "
            '(no sign, exponent, spaces or separators), such as "15.99"'
        )
    return None


def parse_amount_text(value: object, *, param: str = "amount") -> Decimal:
    """Money text (``"15.99"``, major units) as an exact ``Decimal``; raises
    ``InvalidAmount`` naming ``param`` for anything outside the grammar."""
    reason = amount_text_error(value)
    if reason is not None:
        raise InvalidAmount(f"{param} {reason}", param=param)
    assert isinstance(value, str)
    return Decimal(value)


def _amount_field(value: Any) -> Decimal:
    # Runs before pydantic's own parsing, so no non-grammar text ever reaches Decimal().
    # A Decimal can only come from Python code (JSON bodies are parsed without one);
    # ``to_minor`` still checks its value.
    if isinstance(value, Decimal):
        return value
    reason = amount_text_error(value)
    if reason is not None:
        raise ValueError(reason)
    return Decimal(value)


#: ``AMOUNT_PATTERN`` narrowed to what a positive amount may be: greater than zero and at
#: most ``MAX_AMOUNT_UNITS`` (leading zeros allowed). Only the decimals a currency allows
#: are left out of it: they depend on another field.
POSITIVE_AMOUNT_PATTERN: Final[str] = (
    r"^(0*[1-9][0-9]{0,10}(\.[0-9]+)?|0*100000000000(\.0+)?|0+\.[0-9]*[1-9][0-9]*)$"
)
#: ``AMOUNT_PATTERN`` narrowed to zero or a positive amount up to ``MAX_AMOUNT_UNITS``.
AMOUNT_OR_ZERO_PATTERN: Final[str] = (
    r"^(0*[1-9][0-9]{0,10}(\.[0-9]+)?|0*100000000000(\.0+)?|0+(\.[0-9]+)?)$"
)
_RANGE_NOTE = " At most the currency's decimals (USD 2; USDC, USDT, PYUSD, EURC 6)."


def _amount_schema(pattern: str, description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": pattern,
            "maxLength": MAX_AMOUNT_TEXT,
            "description": description,
            "examples": ["15.99"],
        }
    )


#: A request field or query parameter carrying a positive amount as money text; validates
#: to an exact ``Decimal`` in major units. The grammar is checked here, the range and the
#: currency's scale by ``to_minor`` (422 ``invalid_amount``); OpenAPI states both.
AmountText = Annotated[
    Decimal,
    BeforeValidator(_amount_field),
    _amount_schema(
        POSITIVE_AMOUNT_PATTERN,
        "Decimal string in major units: ASCII digits, optionally '.' and more digits; "
        f"greater than zero and at most {MAX_AMOUNT_UNITS}.{_RANGE_NOTE}",
    ),
]
#: Money text that may also be zero (``initial_balance``).
AmountOrZeroText = Annotated[
    Decimal,
    BeforeValidator(_amount_field),
    _amount_schema(
        AMOUNT_OR_ZERO_PATTERN,
        "Decimal string in major units: ASCII digits, optionally '.' and more digits; "
        f"zero or more, at most {MAX_AMOUNT_UNITS}.{_RANGE_NOTE}",
    ),
]
#: Money text bounding a search (``max_price``): any amount, zero included; one above every
#: price matches them all.
AmountBoundText = Annotated[
    Decimal,
    BeforeValidator(_amount_field),
    _amount_schema(
        AMOUNT_PATTERN,
        "Decimal string in major units: ASCII digits, optionally '.' and more digits.",
    ),
]


def to_minor(
    value: Decimal | str | int,
    currency: str,
    *,
    param: str = "amount",
    allow_zero: bool = False,
) -> int:
    """Convert a major-unit amount to minor units without rounding.

    ``value`` is money text (checked against the grammar), a ``Decimal`` already parsed
    from it, or an ``int`` of major units. Raises ``InvalidAmount`` (422, naming ``param``)
    for more decimals than ``currency`` has, zero (unless ``allow_zero``), a negative or
    non-finite value, or more than ``MAX_AMOUNT_UNITS``; ``UnknownCurrency`` for a currency
    outside ``CURRENCY_SCALES``.
    """
    scale = scale_of(currency)
    if isinstance(value, float | bool):
        # Floats cannot carry money exactly; refuse them rather than guess.
        raise InvalidAmount(f"{param} must be a decimal string, not a float", param=param)
    if isinstance(value, str):
        amount = parse_amount_text(value, param=param)
    elif isinstance(value, int):
        amount = Decimal(value)
    else:
        amount = value
    if not amount.is_finite():
        raise InvalidAmount(f"{param} must be a finite number", param=param)
    if amount > MAX_AMOUNT_UNITS:
        # Before scaling: keeps a huge exponent from costing time or an overflow.
        raise InvalidAmount(
            f"{param} exceeds the maximum of {MAX_AMOUNT_UNITS} {currency}", param=param
        )
    minor = amount.scaleb(scale)
    if minor != minor.to_integral_value():
        raise InvalidAmount(
            f"{param} has more than {scale} decimal places for {currency}", param=param
        )
    result = int(minor)
    if result < 0 or (result == 0 and not allow_zero):
        raise InvalidAmount(f"{param} must be greater than zero", param=param)
    if minor > max_minor(currency):
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
