"""Column types shared by the tables, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class EncodedJSON(str):
    """A JSON document's text, already encoded (a large plan's body, whose actions were
    encoded once for its digest): a `JSONDocument` column stores it as it is."""

    __slots__ = ()


def json_text(value: Any) -> str:
    """Every engine's JSON serialiser (`make_engine`): `EncodedJSON` as it is, the rest as
    SQLAlchemy's own default encodes it."""
    return str(value) if isinstance(value, EncodedJSON) else json.dumps(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes; SQLite keeps no zone, so it is put back on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR (no database enum type, so a new member
    needs no migration), and read back as the enum: a status column is typed end to end."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)
