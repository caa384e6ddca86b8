"""The audit log: append-only records, each hashing the one before it (Invariant 2).

`record` commits before it returns, so an intent is durable before the side effect it
announces. Appenders lock the single `AuditHead` row, so concurrent writers, in threads or
replicas, line up behind each other and the chain never forks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, TextIO

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.errors import SecretInAuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.columns import JSONDocument, UTCDateTime, utcnow
from reconciler.records.database import session_scope
from reconciler.secret_values import contains_secret

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def record_hash(prev_hash: str, row: AuditRecord) -> str:
    """The hash of a record: its predecessor's hash, then its fields as canonical JSON."""
    fields = {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": row.actor,
        "event": row.event,
        "lane": row.lane,
        "plan_id": row.plan_id,
        "action_id": row.action_id,
        "data": row.data,
    }
    canonical = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return sha256((prev_hash + canonical).encode()).hexdigest()


def _json_data(data: Mapping[str, Any] | None) -> dict[str, Any]:
    # Stored exactly as it will read back, so the hash computed now still matches later.
    # Objects JSON cannot carry are stored as their str(); SecretValue prints as ***.
    if data is None:
        return {}
    text = json.dumps(dict(data), default=str, allow_nan=False, ensure_ascii=False)
    loaded: dict[str, Any] = json.loads(text, parse_float=_float_as_stored)
    return loaded


def _float_as_stored(text: str) -> float | int:
    # PostgreSQL's jsonb keeps numbers as decimals: 1e20 reads back as the integer
    # 100000000000000000000 and -0.0 as 0.0. Store them in that form to begin with.
    value = float(text)
    if abs(value) >= 1e16:  # every float this large is a whole number
        return int(value)
    return value + 0.0  # -0.0 + 0.0 is 0.0


def _find_secret(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if contains_secret(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if contains_secret(str(key)):
                return f"{path} (a key)"
            found = _find_secret(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_secret(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _lock_head(session: Session) -> AuditHead:
    """Create the head row on first use, then hold it until the transaction ends."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = AuditHead.__table__  # type: ignore[attr-defined]
    insert = dialect.insert(table).values(id=1, seq=0, hash=GENESIS_HASH)
    session.execute(insert.on_conflict_do_nothing())
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    # populate_existing: a head already in this session may be stale; the locked row is not.
    return session.exec(query.execution_options(populate_existing=True)).one()


def append(
    session: Session,
    *,
    event: AuditEvent,
    actor: str,
    lane: str | None = None,
    plan_id: str | None = None,
    action_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Add a record inside the caller's transaction; it is durable when the caller commits.

    On SQLite, prefer `record`: a caller's transaction that has already read may find
    another writer got there first and fail with "database is locked" (it never forks).
    """
    payload = _json_data(data)
    fields: dict[str, Any] = {
        "actor": actor,
        "lane": lane,
        "plan_id": plan_id,
        "action_id": action_id,
        "data": payload,
    }
    where = _find_secret(fields, "record")
    if where is not None:
        raise SecretInAuditRecord(where.removeprefix("record."))
    head = _lock_head(session)
    row = AuditRecord(
        seq=head.seq + 1,
        at=utcnow(),
        actor=actor,
        event=AuditEvent(event).value,
        lane=lane,
        plan_id=plan_id,
        action_id=action_id,
        data=payload,
        prev_hash=head.hash,
        hash="",
    )
    row.hash = record_hash(head.hash, row)
    head.seq, head.hash = row.seq, row.hash
    session.add(row)
    session.add(head)
    session.flush()
    return row


def transaction(engine: Engine) -> AbstractContextManager[Session]:
    """A unit of work that may append audit records: committed when the block ends.

    Other rows written in the same session (ownership claims beside an action's result)
    commit atomically with the records.
    """
    return session_scope(engine, write_lock=True)


def record(
    engine: Engine,
    *,
    event: AuditEvent,
    actor: str,
    lane: str | None = None,
    plan_id: str | None = None,
    action_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append a record in its own transaction, committed before this returns."""
    with transaction(engine) as session:
        return append(
            session,
            event=event,
            actor=actor,
            lane=lane,
            plan_id=plan_id,
            action_id=action_id,
            data=data,
        )


def verify_chain(session: Session) -> ChainVerification:
    """Recompute every hash and link; any edit, deletion or reordering breaks it."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    rows = session.exec(
        select(AuditRecord).order_by(col(AuditRecord.seq)).execution_options(yield_per=500)
    )
    for row in rows:
        if row.seq != expected_seq:
            return ChainVerification(
                False, checked, expected_seq, f"record {expected_seq} is missing"
            )
        if row.prev_hash != prev_hash:
            return ChainVerification(
                False, checked, row.seq, "does not link to the record before it"
            )
        if record_hash(prev_hash, row) != row.hash:
            return ChainVerification(
                False, checked, row.seq, "content does not match its hash (edited)"
            )
        checked += 1
        expected_seq, prev_hash = row.seq + 1, row.hash
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != checked or head_hash != prev_hash:
        return ChainVerification(
            False,
            checked,
            checked + 1,
            f"chain ends at record {checked} but its head says {head_seq} "
            "(records removed from the end)",
        )
    return ChainVerification(True, checked)


def _filtered(lane: str | None, plan_id: str | None, event: AuditEvent | str | None) -> Any:
    query = select(AuditRecord)
    if lane is not None:
        query = query.where(AuditRecord.lane == lane)
    if plan_id is not None:
        query = query.where(AuditRecord.plan_id == plan_id)
    if event is not None:
        query = query.where(AuditRecord.event == AuditEvent(event).value)
    return query


def list_records(
    session: Session,
    *,
    lane: str | None = None,
    plan_id: str | None = None,
    event: AuditEvent | str | None = None,
    since_seq: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Matching records, oldest first.

    Without `since_seq` these are the newest `limit` matches (what an operator wants to
    see); with it, the first `limit` after that seq, so a caller can page forward.
    """
    query = _filtered(lane, plan_id, event)
    if since_seq is not None:
        query = query.where(AuditRecord.seq > since_seq).order_by(col(AuditRecord.seq))
        return list(session.exec(query.limit(limit)).all())
    newest = session.exec(query.order_by(col(AuditRecord.seq).desc()).limit(limit)).all()
    return list(reversed(newest))


def get_record(session: Session, seq: int) -> AuditRecord | None:
    return session.get(AuditRecord, seq)


def record_dict(row: AuditRecord) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": row.actor,
        "event": row.event,
        "lane": row.lane,
        "plan_id": row.plan_id,
        "action_id": row.action_id,
        "data": row.data,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def iter_records(
    session: Session,
    *,
    lane: str | None = None,
    plan_id: str | None = None,
    event: AuditEvent | str | None = None,
    since_seq: int | None = None,
) -> Iterator[AuditRecord]:
    query = _filtered(lane, plan_id, event)
    if since_seq is not None:
        query = query.where(AuditRecord.seq > since_seq)
    yield from session.exec(query.order_by(col(AuditRecord.seq)).execution_options(yield_per=500))


def export_jsonl(
    session: Session,
    out: TextIO,
    *,
    lane: str | None = None,
    plan_id: str | None = None,
    event: AuditEvent | str | None = None,
    since_seq: int | None = None,
) -> int:
    """Write matching records as JSON lines, oldest first, keys sorted; returns the count."""
    count = 0
    for row in iter_records(session, lane=lane, plan_id=plan_id, event=event, since_seq=since_seq):
        out.write(json.dumps(record_dict(row), sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_records"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    event: str = Field(max_length=40, index=True)
    lane: str | None = Field(default=None, max_length=200, index=True)
    plan_id: str | None = Field(default=None, max_length=40, index=True)
    action_id: str | None = Field(default=None, max_length=40)
    data: dict[str, Any] = Field(sa_type=JSONDocument)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})


class AuditHead(SQLModel, table=True):
    """One row: the chain's tip. Appenders lock it, so concurrent writers cannot fork the chain."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0)
    hash: str = Field(default="0" * 64, max_length=64)
