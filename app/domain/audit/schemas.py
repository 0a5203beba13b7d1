from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditRecordRead(BaseModel):
    seq: int
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
