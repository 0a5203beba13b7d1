from typing import cast

from sqlalchemy import Table

from app.models.payment import OutboxEvent

_events = cast(Table, OutboxEvent.__table__)
