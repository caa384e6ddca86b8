"""The ownership registry: which outside objects Setpoint created or adopted, for which lane.

Every row names the kind and the lane that owns it, so a kind sees and removes only its own
objects (Invariant 4). What a kind must remember about an object (the env keys it wrote,
the configuration its last verified deploy ran with) lives in `facts`, opaque to the
engine. Planning reads a snapshot, indexed by lane and by object; apply records the claims,
facts and releases that executors report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from reconciler.core.inventory import Owned, OwnershipSnapshot
from reconciler.core.outcomes import Claim, Facts, ObjectRef
from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import session_scope, table_of


class OwnedObject(SQLModel, table=True):
    __tablename__ = "owned_objects"
    __table_args__ = (
        sa.UniqueConstraint("provider", "object_type", "object_id", name="uq_owned_objects_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)  # dokploy | github | a host adapter
    object_type: str = Field(max_length=32)  # application | compose | runner ...
    object_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32, index=True)  # the lane kind that owns it
    lane: str = Field(max_length=200, index=True)  # lane key, "kind:name"
    protected: bool = Field(default=False)
    adopted: bool = Field(default=False)
    facts: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    # The writer's `now` (the runtime's clock), never a default; `updated_at` moves with
    # every claim and facts update (a pass's context is keyed on its newest value).
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


def _frozen(row: OwnedObject) -> Owned:
    return Owned(
        provider=row.provider,
        object_type=row.object_type,
        object_id=row.object_id,
        name=row.name,
        kind=row.kind,
        lane=row.lane,
        protected=row.protected,
        adopted=row.adopted,
        facts=dict(row.facts or {}),
    )


def snapshot(engine: Engine) -> OwnershipSnapshot:
    with session_scope(engine) as session:
        rows = session.exec(select(OwnedObject)).all()
        return OwnershipSnapshot(tuple(_frozen(r) for r in rows))


def record_claim(
    session: Session, claim: Claim, now: datetime, *, kind: str, lane: str, adopted: bool = False
) -> None:
    """Record that Setpoint owns an object (created it, or adopted it explicitly)."""
    connection = session.connection()
    found = _found(session, claim.ref)
    if found is None:
        connection.execute(
            _INSERT,
            {
                "provider": claim.ref.provider,
                "object_type": claim.ref.object_type,
                "object_id": claim.ref.object_id,
                "name": claim.name,
                "kind": kind,
                "lane": lane,
                "protected": claim.protected,
                "adopted": adopted,
                "facts": dict(claim.facts),
                "created_at": now,
                "updated_at": now,
            },
        )
        return
    row_id, known = found
    connection.execute(
        _UPDATE,
        {
            "row_id": row_id,
            "kind": kind,
            "lane": lane,
            "name": claim.name,
            "protected": claim.protected,
            "facts": {**known, **claim.facts},
            "updated_at": now,
        },
    )


def record_facts(session: Session, update: Facts, now: datetime) -> None:
    found = _found(session, update.ref)
    if found is None:
        return
    row_id, known = found
    session.connection().execute(
        _UPDATE, {"row_id": row_id, "facts": {**known, **update.facts}, "updated_at": now}
    )


def record_seen(engine: Engine, updates: Sequence[Facts], now: datetime) -> None:
    """What a survey saw of owned objects (`Observation.seen_facts`), in one transaction."""
    if not updates:
        return
    with session_scope(engine) as session:
        for update in updates:
            record_facts(session, update, now)


def record_release(session: Session, ref: ObjectRef) -> None:
    """Forget an object Setpoint deleted."""
    session.connection().execute(_DELETE, _ref_params(ref))


def claim(
    engine: Engine, claim: Claim, now: datetime, *, kind: str, lane: str, adopted: bool = False
) -> None:
    with session_scope(engine) as session:
        record_claim(session, claim, now, kind=kind, lane=lane, adopted=adopted)


def sync_protection(engine: Engine, protect_by_lane: Mapping[str, bool], now: datetime) -> int:
    """Keep the registry's protect flag in step with desired state; returns rows changed.

    The flag must outlive the lane's desired entry: when a lane is removed, this is what
    decides whether its objects may be deleted.
    """
    changed = 0
    with session_scope(engine) as session:
        rows = session.exec(select(OwnedObject)).all()
        for row in rows:
            wanted = protect_by_lane.get(row.lane)
            if wanted is not None and row.protected != wanted:
                row.protected, row.updated_at = wanted, now
                session.add(row)
                changed += 1
    return changed


def apply_changes(
    session: Session,
    *,
    kind: str,
    lane: str,
    claims: Iterable[Claim],
    facts: Iterable[Facts],
    releases: Iterable[ObjectRef],
    now: datetime,
) -> None:
    for claimed in claims:
        record_claim(session, claimed, now, kind=kind, lane=lane)
    for update in facts:
        record_facts(session, update, now)
    for ref in releases:
        record_release(session, ref)


# Core statements built once: an apply records a claim or facts for most actions, and
# building, keying and flushing an ORM object for each cost more than running these.
_OWNED = table_of(OwnedObject)
_SAME_REF = sa.and_(
    _OWNED.c.provider == sa.bindparam("ref_provider"),
    _OWNED.c.object_type == sa.bindparam("ref_object_type"),
    _OWNED.c.object_id == sa.bindparam("ref_object_id"),
)
_FIND = sa.select(_OWNED.c.id, _OWNED.c.facts).where(_SAME_REF)
_INSERT = sa.insert(_OWNED)
_UPDATE = sa.update(_OWNED).where(_OWNED.c.id == sa.bindparam("row_id"))  # SET: the given
_DELETE = sa.delete(_OWNED).where(_SAME_REF)


def _ref_params(ref: ObjectRef) -> dict[str, str]:
    return {
        "ref_provider": ref.provider,
        "ref_object_type": ref.object_type,
        "ref_object_id": ref.object_id,
    }


def _found(session: Session, ref: ObjectRef) -> tuple[int, dict[str, Any]] | None:
    """The registry row of `ref`: its id and its facts, or None."""
    row = session.connection().execute(_FIND, _ref_params(ref)).first()
    return None if row is None else (row.id, dict(row.facts or {}))
