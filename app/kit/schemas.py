"""The base of every request body, and the text types its fields use.

Every byte a client sends that Purser did not expect is an error, never data:

- unknown members are refused (``extra="forbid"``), so a misspelt ``limit_per_txn`` is a
  422 naming it instead of an agent silently left without its limit;
- booleans and integers are strict JSON types (``StrictBool``/``StrictInt`` in the field
  types): ``"is_active": 0`` is not ``false`` and ``"5"`` is not ``5``;
- every string, in any field of any request body, is text PostgreSQL can store: no NUL
  character (U+0000) and no lone surrogate (``"\\ud800"`` is valid JSON but not UTF-8);
- every string field declares a maximum length (a test walks the OpenAPI document).
"""

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, StringConstraints, WithJsonSchema, field_validator

from app.kit.money import CURRENCY_SCALES

#: What OpenAPI says of every request string without a stricter pattern: no NUL character
#: (lone surrogates cannot be written in a pattern; they are refused all the same).
STORABLE_TEXT_PATTERN: Final[str] = r"^[^\x00]*$"
#: Longest id Purser issues or accepts (``agent_`` + 16 characters, with room to spare).
MAX_ID_LENGTH: Final[int] = 64


def storable_text_error(value: str) -> str | None:
    """Why PostgreSQL could not store ``value`` as text, or ``None`` if it can."""
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (it contains a lone surrogate)"
    return None


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        reason = storable_text_error(value)
        if reason is not None:
            raise ValueError(reason)
    elif isinstance(value, list | tuple):
        for item in value:
            _storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    return value


#: An id given in a body (``agent_id``, ``merchant_id`` …): one that cannot exist is a 404.
IdText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
#: A currency code: any text up to 10 characters parses, and ``app.kit.money.scale_of``
#: refuses an unsupported one with ``422 unknown_currency``; OpenAPI lists the supported.
CurrencyText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10),
    WithJsonSchema({"type": "string", "enum": list(CURRENCY_SCALES)}),
]


def _document_storable_text(schema: dict[str, Any]) -> None:
    """Add ``STORABLE_TEXT_PATTERN`` to every string of a request schema that has no
    pattern or enum of its own (in ``anyOf`` alternatives and array items too)."""
    for prop in schema.get("properties", {}).values():
        for option in [prop, *prop.get("anyOf", [])]:
            for candidate in (option, option.get("items", {})):
                if (
                    candidate.get("type") == "string"
                    and "pattern" not in candidate
                    and "enum" not in candidate
                    and "format" not in candidate
                ):
                    candidate["pattern"] = STORABLE_TEXT_PATTERN


class RequestSchema(BaseModel):
    """Base of every request body (see the module docstring for what it refuses)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_storable_text)

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_storable(cls, value: Any) -> Any:
        return _storable(value)
