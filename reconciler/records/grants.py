"""Grants: which GitHub workflows may ask the API to reconcile which lanes, and how.

A grant names a repository by its numeric id (a renamed or re-created repository with the
same name does not inherit it), and patterns for the workflow ref, the git ref, the
deployment environment and the lanes (shell-style: `*` matches any run of characters,
slashes included). It allows `plan`, or `plan` and `apply`. Nothing is allowed without a
grant that matches every one of them (deny by default); the lane's own policy still decides
whether an apply requested through a grant runs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.records.columns import UTCDateTime

ANY = "*"


class GrantAction(StrEnum):
    plan = "plan"
    apply = "apply"  # includes plan


class Grant(SQLModel, table=True):
    __tablename__ = "grants"

    id: str = Field(primary_key=True, max_length=40)
    repository_id: int = Field(sa_type=sa.BigInteger, index=True)  # GitHub ids outgrow 32 bits
    repository: str = Field(max_length=200)  # the name when granted, for people only
    workflow_ref: str = Field(default=ANY, max_length=300)
    ref: str = Field(default=ANY, max_length=300)
    # `*` also matches a job with no environment; any other pattern needs one that matches.
    environment: str = Field(default=ANY, max_length=200)
    lanes: str = Field(max_length=200)
    allow_apply: bool = False
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def actions(self) -> list[GrantAction]:
        return [GrantAction.plan, GrantAction.apply] if self.allow_apply else [GrantAction.plan]


@dataclass(frozen=True)
class GrantSubject:
    """What a verified token says about its workflow: the fields grants match on."""

    repository_id: int
    workflow_ref: str
    ref: str
    environment: str | None


@dataclass(frozen=True)
class GrantSpec:
    repository_id: int
    repository: str
    lanes: str
    workflow_ref: str = ANY
    ref: str = ANY
    environment: str = ANY
    allow_apply: bool = False


def add_grant(session: Session, spec: GrantSpec, actor: str, now: datetime) -> Grant:
    row = Grant(
        id=f"grt_{secrets.token_hex(6)}",
        repository_id=spec.repository_id,
        repository=spec.repository,
        workflow_ref=spec.workflow_ref,
        ref=spec.ref,
        environment=spec.environment,
        lanes=spec.lanes,
        allow_apply=spec.allow_apply,
        created_by=actor,
        created_at=now,
    )
    session.add(row)
    return row


def remove_grant(session: Session, grant_id: str) -> Grant | None:
    """The grant removed, or None when there is no such grant."""
    row = session.get(Grant, grant_id)
    if row is not None:
        session.delete(row)
    return row


def all_grants(session: Session) -> list[Grant]:
    rows = session.exec(select(Grant).order_by(col(Grant.created_at), col(Grant.id)))
    return list(rows)


def _matches(grant: Grant, subject: GrantSubject, lane: str) -> bool:
    if grant.environment != ANY and (
        subject.environment is None or not fnmatchcase(subject.environment, grant.environment)
    ):
        return False
    return (
        fnmatchcase(subject.workflow_ref, grant.workflow_ref)
        and fnmatchcase(subject.ref, grant.ref)
        and fnmatchcase(lane, grant.lanes)
    )


def allowing(
    session: Session, subject: GrantSubject, lane: str, action: GrantAction
) -> Grant | None:
    """A grant that lets `subject` do `action` on `lane`, or None (deny by default)."""
    rows = session.exec(select(Grant).where(Grant.repository_id == subject.repository_id))
    for grant in rows:
        if _matches(grant, subject, lane) and action in grant.actions:
            return grant
    return None
