"""Offset pagination parameters shared by list endpoints (``limit``/``offset`` as in the seed)."""

from dataclasses import dataclass

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
