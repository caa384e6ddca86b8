"""The ownership registry as the engine uses it: a snapshot for planning, writes for apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, select

from reconciler.records.columns import JSONDocument, UTCDateTime, utcnow
from reconciler.records.database import session_scope


@dataclass(frozen=True)
class Owned:
    provider: str
    object_type: str
    object_id: str
    name: str
    lane: str
    protected: bool
    adopted: bool
    managed_env_keys: tuple[str, ...]
    plain_env_keys: tuple[str, ...]
    deployed_config_hash: str | None


@dataclass(frozen=True)
class OwnershipSnapshot:
    objects: tuple[Owned, ...]

    def for_lane(self, lane: str, provider: str = "dokploy") -> list[Owned]:
        return [o for o in self.objects if o.lane == lane and o.provider == provider]

    def service_of(self, lane: str) -> Owned | None:
        services = [o for o in self.for_lane(lane) if o.object_type in ("application", "compose")]
        return services[0] if services else None

    def owns(self, provider: str, object_type: str, object_id: str) -> Owned | None:
        for o in self.objects:
            if (o.provider, o.object_type, o.object_id) == (provider, object_type, object_id):
                return o
        return None

    def lanes(self, provider: str = "dokploy") -> set[str]:
        return {o.lane for o in self.objects if o.provider == provider}

    def count(self, provider: str = "dokploy") -> int:
        return sum(1 for o in self.objects if o.provider == provider)


def _frozen(row: OwnedObject) -> Owned:
    return Owned(
        provider=row.provider,
        object_type=row.object_type,
        object_id=row.object_id,
        name=row.name,
        lane=row.lane,
        protected=row.protected,
        adopted=row.adopted,
        managed_env_keys=tuple(row.managed_env_keys),
        plain_env_keys=tuple(row.plain_env_keys),
        deployed_config_hash=row.deployed_config_hash,
    )


def snapshot(engine: Engine) -> OwnershipSnapshot:
    with session_scope(engine) as session:
        rows = session.exec(select(OwnedObject)).all()
        return OwnershipSnapshot(tuple(_frozen(r) for r in rows))


def claim(
    engine: Engine,
    *,
    provider: str,
    object_type: str,
    object_id: str,
    name: str,
    lane: str,
    protected: bool,
    adopted: bool = False,
) -> None:
    """Record that Setpoint owns an object (created it, or adopted it explicitly)."""
    with session_scope(engine) as session:
        row = _find(session, provider, object_type, object_id)
        if row is None:
            row = OwnedObject(
                provider=provider,
                object_type=object_type,
                object_id=object_id,
                name=name,
                lane=lane,
                protected=protected,
                adopted=adopted,
            )
        else:
            row.lane, row.name, row.protected, row.updated_at = lane, name, protected, utcnow()
        session.add(row)


def update_service(
    engine: Engine,
    *,
    provider: str,
    object_type: str,
    object_id: str,
    managed_env_keys: list[str] | None = None,
    plain_env_keys: list[str] | None = None,
    deployed_config_hash: str | None = None,
) -> None:
    with session_scope(engine) as session:
        row = _find(session, provider, object_type, object_id)
        if row is None:
            return
        if managed_env_keys is not None:
            row.managed_env_keys = sorted(managed_env_keys)
        if plain_env_keys is not None:
            row.plain_env_keys = sorted(plain_env_keys)
        if deployed_config_hash is not None:
            row.deployed_config_hash = deployed_config_hash
        row.updated_at = utcnow()
        session.add(row)


def set_protected(engine: Engine, lane: str, protected: bool, provider: str = "dokploy") -> int:
    """Keep the registry's protect flag in step with desired state; returns rows changed.

    The flag must outlive the lane's desired entry: when a lane is removed, this is what
    decides whether its objects may be deleted.
    """
    changed = 0
    with session_scope(engine) as session:
        rows = session.exec(
            select(OwnedObject).where(OwnedObject.lane == lane, OwnedObject.provider == provider)
        ).all()
        for row in rows:
            if row.protected != protected:
                row.protected, row.updated_at = protected, utcnow()
                session.add(row)
                changed += 1
    return changed


def release(engine: Engine, *, provider: str, object_type: str, object_id: str) -> None:
    """Forget an object Setpoint deleted."""
    with session_scope(engine) as session:
        row = _find(session, provider, object_type, object_id)
        if row is not None:
            session.delete(row)


def _find(session: object, provider: str, object_type: str, object_id: str) -> OwnedObject | None:
    from sqlmodel import Session

    assert isinstance(session, Session)
    query = select(OwnedObject).where(
        OwnedObject.provider == provider,
        OwnedObject.object_type == object_type,
        OwnedObject.object_id == object_id,
    )
    return session.exec(query).first()


class OwnedObject(SQLModel, table=True):
    __tablename__ = "owned_objects"
    __table_args__ = (
        sa.UniqueConstraint("provider", "object_type", "object_id", name="uq_owned_objects_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)  # dokploy | github
    object_type: str = Field(max_length=32)  # application | compose | runner ...
    object_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    lane: str = Field(max_length=200, index=True)
    protected: bool = Field(default=False)
    adopted: bool = Field(default=False)
    # Env keys Setpoint wrote: removing one from desired state removes it here, and keys
    # someone else added by hand are left alone.
    managed_env_keys: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # The subset Setpoint wrote from plain (non-secret) desired env: the only values read back
    # from Dokploy that a plan may show in clear. Everything else appears as a fingerprint.
    plain_env_keys: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    # Hash of the configuration the last verified deploy ran with: a save without a deploy
    # (a failed apply, say) leaves it behind, so the next plan knows a deploy is owed.
    deployed_config_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
