from datetime import datetime
from typing import Final

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    DateTime,
    MetaData,
    String,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The connection setting that names the mode (``sandbox`` or ``live``) of everything a
#: connection writes and reads. ``app.db.create_engine`` sets it once per connection from
#: the server's settings, so no request spends a statement on it.
MODE_SETTING: Final = "purser.mode"

#: The mode of the current connection, in SQL. Without the setting the expression raises
#: instead of guessing: a connection that did not say which mode it serves writes nothing.
CURRENT_MODE_SQL: Final = f"current_setting('{MODE_SETTING}')"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ModeScoped:
    """Rows that belong to one mode: sandbox rows and live rows never meet.

    The column defaults to the connection's mode, so inserts need not name it; every read
    an owner's request reaches compares it with ``current_mode()``. An id of the other
    mode is then answered exactly like an id that does not exist.
    """

    mode: Mapped[str] = mapped_column(
        String(8),
        CheckConstraint("mode IN ('sandbox', 'live')", name="mode_known"),
        nullable=False,
        server_default=text(CURRENT_MODE_SQL),
    )


def current_mode() -> ColumnElement[str]:
    """The connection's mode, for ``WHERE table.mode = current_mode()`` (rendered inline:
    no bound parameter, evaluated once per statement)."""
    return literal_column(CURRENT_MODE_SQL, String)
