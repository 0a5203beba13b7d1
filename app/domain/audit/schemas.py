from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditRecordRead(BaseModel):
    seq: int | None = Field(
        description=(
            "The record's number among the owner's own records of the key's mode (1, 2, 3… "
            "in chain order, without gaps), given when it is sealed; null until then"
        )
    )
    event: str
    key_id: str | None
    request_id: str | None
    subject_type: str
    subject_id: str
    agent_id: str | None
    amount: str | None
    currency: str | None
    data: dict[str, Any]
    created_at: datetime
    sealed: bool


class AuditPage(BaseModel):
    data: list[AuditRecordRead]
    next_cursor: str | None
