"""The OIDC replay store in the database: every token id (`jti`) is accepted once, across
every replica sharing the database.

A row lives until its token could no longer be accepted anyway (its expiry plus the
verifier's leeway, with room to spare); claiming prunes the rows past that, so the table
holds only the tokens of the last few minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from reconciler.records.columns import UTCDateTime
from reconciler.records.database import in_thread, session_scope, table_of

# Longer than any leeway a verifier allows past a token's `exp`.
KEEP_PAST_EXPIRY = timedelta(minutes=5)


class OidcReplay(SQLModel, table=True):
    __tablename__ = "oidc_replays"

    jti: str = Field(primary_key=True, max_length=200)
    forget_after: datetime = Field(sa_type=UTCDateTime, index=True)


_replays = table_of(OidcReplay)


def claim_jti(session: Session, jti: str, expires_at: datetime, now: datetime) -> bool:
    """Record `jti`; False when it was recorded before (a replay). Atomic: of two requests
    with one token, the database lets exactly one insert the row."""
    session.execute(_replays.delete().where(_replays.c.forget_after < now))
    values = {"jti": jti[:200], "forget_after": expires_at + KEEP_PAST_EXPIRY}
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(_replays).values(values).on_conflict_do_nothing()
        inserted = session.execute(statement.returning(_replays.c.jti)).first()
        return inserted is not None
    result = session.execute(sqlite.insert(_replays).values(values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0) == 1)


class DatabaseReplayStore:
    """`providers.github.oidc.ReplayStore` on the database, shared by replicas."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock  # the runtime's clock (`Runtime.now`): when a jti may be forgotten

    def _claim(self, jti: str, expires_at: datetime) -> bool:
        with session_scope(self._engine, write_lock=True) as session:
            return claim_jti(session, jti, expires_at, self._clock())

    async def claim(self, jti: str, expires_at: datetime) -> bool:
        return await in_thread(self._claim, jti, expires_at)
