"""Offset pagination parameters shared by list endpoints (``limit``/``offset`` as in the seed)."""

from dataclasses import dataclass

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Deepest offset accepted; beyond it, page with the list's cursor (and no int64 overflow).
MAX_OFFSET = 1_000_000


@dataclass(frozen=True, slots=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
