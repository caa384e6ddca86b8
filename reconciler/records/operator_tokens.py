"""Operator tokens: bearer tokens for people and tools that may apply plans through the API
and the plan review page.

Only a SHA-256 digest of each token is stored; the token itself is shown once, when it is
made. A token names its operator, so every apply and refusal made with it is audited under
that name. Revoking keeps the row (the audit trail names it) and stops it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import UTCDateTime

TOKEN_PREFIX = "spt_"  # noqa: S105 - a public marker that says what a string is, not a secret


class OperatorToken(SQLModel, table=True):
    __tablename__ = "operator_tokens"

    id: str = Field(primary_key=True, max_length=40)
    operator: str = Field(max_length=200)
    digest: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class OperatorIdentity:
    token_id: str
    operator: str

    @property
    def actor(self) -> str:
        """How the audit trail names what this operator does."""
        return f"operator:{self.operator}"


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    operator: str
    token: str  # shown once; never stored or logged


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, operator: str, now: datetime) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = OperatorToken(
        id=f"tok_{secrets.token_hex(8)}", operator=operator, digest=_digest(token), created_at=now
    )
    session.add(row)
    return IssuedToken(row.id, operator, token)


def verify(session: Session, token: str) -> OperatorIdentity | None:
    """The operator a live token belongs to, or None (unknown, revoked or malformed)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(token)
    row = session.exec(select(OperatorToken).where(OperatorToken.digest == digest)).one_or_none()
    # The lookup is by digest, so timing says nothing about the token; the comparison is
    # constant-time anyway, in case a database ever matches by prefix.
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.digest, digest):
        return None
    return OperatorIdentity(row.id, row.operator)


def revoke(session: Session, token_id: str, now: datetime) -> bool:
    """False when there is no such live token."""
    row = session.get(OperatorToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.add(row)
    return True


def listed(session: Session) -> list[OperatorToken]:
    return list(session.exec(select(OperatorToken).order_by(col(OperatorToken.created_at))))
