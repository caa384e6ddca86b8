"""Review-page sessions: one row per sign-in, so that signing out ends the session on the
server, not only in the browser (a copied cookie stops working at once).

The browser's cookie names the row's random id, signed with the site's form key; a request
is signed in only while its row is neither ended nor expired and the operator token it was
opened with is still live.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col

from reconciler.records.columns import UTCDateTime
from reconciler.records.operator_tokens import OperatorIdentity, OperatorToken


class WebSession(SQLModel, table=True):
    __tablename__ = "web_sessions"

    id: str = Field(primary_key=True, max_length=40)
    token_id: str = Field(max_length=40, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def begin(session: Session, token_id: str, now: datetime, seconds: float) -> WebSession:
    row = WebSession(
        id=f"ses_{secrets.token_hex(16)}",
        token_id=token_id,
        created_at=now,
        expires_at=now + timedelta(seconds=seconds),
    )
    session.add(row)
    return row


def operator_of(session: Session, session_id: str, now: datetime) -> OperatorIdentity | None:
    """Who a live session belongs to: not ended, not expired, its token not revoked."""
    row = session.get(WebSession, session_id)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    token = session.get(OperatorToken, row.token_id)
    if token is None or token.revoked_at is not None:
        return None  # revoking a token ends its sessions at once
    return OperatorIdentity(token.id, token.operator)


def end(session: Session, session_id: str, now: datetime) -> bool:
    """End a session (sign-out); False when there was no live one. Ended and expired rows
    older than a day are deleted on the way."""
    session.execute(
        sa.delete(WebSession).where(
            sa.or_(
                col(WebSession.ended_at) < now - timedelta(days=1), col(WebSession.expires_at) < now
            )
        )
    )
    row = session.get(WebSession, session_id)
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = now
    session.add(row)
    return True
