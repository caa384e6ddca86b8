"""The audit log: append-only records, each hashing the one before it (Invariant 2).

`record` commits before it returns, so an intent is durable before the side effect it
announces. Appenders lock the single `AuditHead` row, so concurrent writers, in threads or
replicas, line up behind each other and the chain never forks.

Records written together (`append_many`, `record_many`) move the head once: one
`UPDATE ... RETURNING` both locks the head and reads where the chain ends, the hashes are
chained in memory, the rows go in as one INSERT, and the head takes the last hash. The lock
is the head row's on PostgreSQL and the database's write lock on SQLite; either is held
until the transaction ends, so a second writer reads the head only after the first commits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, TextIO
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoResultFound
from sqlmodel import Field, Session, SQLModel, col, select

from reconciler.errors import AuditHeadLost, AuditRepairRefused, SecretInAuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import session_scope, table_of
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
    return _chained_hash(prev_hash, _columns(row))


def _chained_hash(prev_hash: str, columns: Mapping[str, Any]) -> str:
    """`record_hash` of a record given as its columns (`_columns`), before any row exists."""
    fields = {
        "seq": columns["seq"],
        "at": columns["at"].astimezone(UTC).isoformat(),
        "actor": columns["actor"],
        "event": columns["event"],
        "lane": columns["lane"],
        "plan_id": columns["plan_id"],
        "action_id": columns["action_id"],
        "data": columns["data"],
    }
    # `data` is stored JSON, parsed back (`_json_data`): no cycle for the encoder to look for.
    canonical = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
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


def _secret_path(fields: dict[str, Any]) -> str | None:
    """Where in `fields` a secret is, if anywhere. One search over every string the record
    holds (its keys too; NUL between them, which no secret spans), and the walk that names
    the place only once that found one: a plan's record lists each of its actions, and a
    search per string cost a tenth of a 10,000-lane plan's CPU."""
    strings: list[str] = []
    pending: list[Any] = [fields]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            strings.extend(str(key) for key in value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    if not contains_secret("\x00".join(strings)):
        return None
    return _find_secret(fields, "record")


@dataclass(frozen=True)
class AuditEntry:
    """One record to append: what `append` takes as keywords, as a value `append_many` takes."""

    event: AuditEvent
    actor: str
    lane: str | None = None
    plan_id: str | None = None
    action_id: str | None = None
    data: Mapping[str, Any] | None = None


def _checked_fields(entry: AuditEntry) -> dict[str, Any]:
    """The entry's fields as they will be stored; refuses one that would carry a secret."""
    fields: dict[str, Any] = {
        "actor": entry.actor,
        "lane": entry.lane,
        "plan_id": entry.plan_id,
        "action_id": entry.action_id,
        "data": _json_data(entry.data),
    }
    where = _secret_path(fields)
    if where is not None:
        raise SecretInAuditRecord(where.removeprefix("record."))
    fields["event"] = AuditEvent(entry.event).value
    return fields


def _advance_head(connection: Connection, count: int) -> tuple[int, str]:
    """Move the head `count` places; returns the seq and hash it had before.

    The statement that moves the head also locks its row until the transaction ends, and
    reads it under that lock, so no other writer can move it between our read and write.
    """
    row = _advance(connection, count)
    if row is None:
        # First use, or a lost head. A concurrent first writer's insert turns ours into a
        # no-op (on PostgreSQL ours waits for it to commit), so only a head we inserted
        # ourselves can meet records already there: then the head was lost, and this
        # transaction (with the head it just made) rolls back rather than re-chain. Looking
        # at the records before inserting would race a first writer committing meanwhile.
        if _create_head(connection):
            last = connection.execute(_LAST_SEQ).scalar()
            if last is not None:
                raise AuditHeadLost(int(last))
        row = _advance(connection, count)
    if row is None:  # a snapshot taken before the head existed (REPEATABLE READ, say)
        raise NoResultFound("no audit head row is visible to this transaction")
    return row[0] - count, row[1]


def _create_head(connection: Connection) -> bool:
    """Insert the head at genesis unless one exists; True when this call inserted it."""
    if connection.dialect.name == "postgresql":  # psycopg reports no rowcount here
        made = connection.execute(_CREATE_HEAD_POSTGRESQL.returning(_HEAD.c.id))
        return made.scalar_one_or_none() is not None
    return connection.execute(_CREATE_HEAD_SQLITE).rowcount == 1


def _advance(connection: Connection, count: int) -> tuple[int, str] | None:
    """The head's new seq and its (unchanged) hash, or None when there is no head yet."""
    if connection.dialect.update_returning:
        row = connection.execute(_ADVANCE_RETURNING, {"count": count}).one_or_none()
    elif connection.execute(_ADVANCE, {"count": count}).rowcount == 0:
        row = None
    else:
        # SQLite before 3.35 has no RETURNING. Its UPDATE took the database's write lock for
        # the rest of the transaction, so the row read straight after is still ours alone.
        row = connection.execute(_READ_HEAD).one()
    return None if row is None else (row.seq, row.hash)


def append_many(
    session: Session, entries: Sequence[AuditEntry], *, at: datetime
) -> list[AuditRecord]:
    """Add records, in order, inside the caller's transaction; durable when it commits.
    Every record carries `at`, the writer's time (the runtime's clock, `Runtime.now()`).

    Every entry is checked for secrets before anything is written, so a refused batch
    leaves no trace. The head moves once for the whole batch and the rows go in as one
    Core INSERT: no ORM unit of work, so the returned records are not in the session.

    On SQLite, prefer `record_many`: a caller's transaction that has already read may find
    another writer got there first and fail with "database is locked" (it never forks).
    """
    return [AuditRecord(**columns) for columns in append_entries(session, entries, at=at)]


def append_entries(
    session: Session, entries: Sequence[AuditEntry], *, at: datetime
) -> list[dict[str, Any]]:
    """`append_many`, returning each record's columns rather than a record object: for a
    writer that does not read them back (an apply's journal, two records per action), as
    building the objects cost more than inserting them."""
    fields = [_checked_fields(entry) for entry in entries]
    if not fields:
        return []
    # The caller's own pending rows (ownership claims, say) go in before the head is taken:
    # every writer queues on the head, so it is held only from our statements to the commit.
    session.flush()
    connection = session.connection()
    seq, prev_hash = _advance_head(connection, len(fields))
    rows: list[dict[str, Any]] = []  # all at `at`: written and committed together
    for stored in fields:
        seq += 1
        columns = {"seq": seq, "at": at, **stored, "prev_hash": prev_hash}
        columns["hash"] = prev_hash = _chained_hash(prev_hash, columns)
        rows.append(columns)
    connection.execute(_INSERT_RECORDS, rows)
    connection.execute(_SET_HEAD_HASH, {"hash": prev_hash})
    return rows


def _columns(row: AuditRecord) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "event": row.event,
        "lane": row.lane,
        "plan_id": row.plan_id,
        "action_id": row.action_id,
        "data": row.data,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def append(
    session: Session,
    *,
    event: AuditEvent,
    actor: str,
    lane: str | None = None,
    plan_id: str | None = None,
    action_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    at: datetime,
) -> AuditRecord:
    """Add a record inside the caller's transaction; it is durable when the caller commits.

    On SQLite, prefer `record`: a caller's transaction that has already read may find
    another writer got there first and fail with "database is locked" (it never forks).
    """
    entry = AuditEntry(event, actor, lane, plan_id, action_id, data)
    return append_many(session, [entry], at=at)[0]


def transaction(engine: Engine) -> AbstractContextManager[Session]:
    """A unit of work that may append audit records: committed when the block ends.

    Other rows written in the same session (ownership claims beside an action's result)
    commit atomically with the records.
    """
    return _queued_session(engine)


@contextmanager
def _queued_session(engine: Engine) -> Iterator[Session]:
    with _writer_queue(engine), session_scope(engine, write_lock=True) as session:
        yield session


# On SQLite, this process's audit writers queue on a lock of their own before asking for
# the database's: SQLite's busy handler polls with sleeps of up to 100 ms, so four threads
# contending there committed fewer records between them than one thread alone. Reentrant,
# so a nested transaction fails as it always did (SQLite's busy timeout), never hangs.
# Other processes, and other engines, still queue in SQLite's busy handler.
_writer_queues: WeakKeyDictionary[Engine, threading.RLock] = WeakKeyDictionary()
_writer_queues_guard = threading.Lock()


def _writer_queue(engine: Engine) -> AbstractContextManager[object]:
    if engine.dialect.name != "sqlite":
        return nullcontext()  # PostgreSQL queues writers on the head row, without polling
    with _writer_queues_guard:
        return _writer_queues.setdefault(engine, threading.RLock())


def record(
    engine: Engine,
    *,
    event: AuditEvent,
    actor: str,
    lane: str | None = None,
    plan_id: str | None = None,
    action_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    at: datetime,
) -> AuditRecord:
    """Append a record in its own transaction, committed before this returns."""
    entry = AuditEntry(event, actor, lane, plan_id, action_id, data)
    return record_many(engine, [entry], at=at)[0]


def record_many(
    engine: Engine, entries: Sequence[AuditEntry], *, at: datetime
) -> list[AuditRecord]:
    """Append records in one transaction of their own, committed before this returns."""
    with transaction(engine) as session:
        return append_many(session, entries, at=at)


def verify_chain(session: Session) -> ChainVerification:
    """Recompute every hash and link; any edit, deletion or reordering breaks it."""
    broken, checked, last_hash = _walk(session)
    return broken or _check_head(session, checked, last_hash)


def _walk(session: Session) -> tuple[ChainVerification | None, int, str]:
    """The records' own links and hashes, without the head: (the break or None, how many
    verified, the last verified hash)."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    rows = session.exec(
        select(AuditRecord).order_by(col(AuditRecord.seq)).execution_options(yield_per=500)
    )
    for row in rows:
        reason = _break_in(row, expected_seq, prev_hash)
        if reason is not None:
            bad_seq = expected_seq if row.seq != expected_seq else row.seq
            return ChainVerification(False, checked, bad_seq, reason), checked, prev_hash
        checked += 1
        expected_seq, prev_hash = row.seq + 1, row.hash
    return None, checked, prev_hash


def _break_in(row: AuditRecord, expected_seq: int, prev_hash: str) -> str | None:
    if row.seq != expected_seq:
        return f"record {expected_seq} is missing"
    if row.prev_hash != prev_hash:
        return "does not link to the record before it"
    if record_hash(prev_hash, row) != row.hash:
        return "content does not match its hash (edited)"
    return None


def _check_head(session: Session, checked: int, last_hash: str) -> ChainVerification:
    # populate_existing: appends write the head with Core statements, so a head object this
    # session loaded earlier may be stale; the row itself is not.
    head = session.get(AuditHead, 1, populate_existing=True)
    if head is None and checked > 0:
        return ChainVerification(
            False,
            checked,
            None,
            f"the audit head is lost: {checked} record(s) verify but the head row is gone; "
            "recreate it with `setpoint audit repair-head`",
        )
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != checked or head_hash != last_hash:
        return ChainVerification(
            False,
            checked,
            checked + 1,
            f"chain ends at record {checked} but its head says {head_seq} "
            "(records removed from the end)",
        )
    return ChainVerification(True, checked)


def repair_head(engine: Engine, actor: str, at: datetime) -> AuditRecord:
    """Recreate a lost head at the last record, and audit that it was done.

    Refused when the head is present, or when the records do not verify on their own:
    a repair never papers over an edit. The `audit_head_repaired` record says which record
    the new head was set to, so the repair is itself on the trail.
    """
    with transaction(engine) as session:
        if session.get(AuditHead, 1) is not None:
            raise AuditRepairRefused("the audit head is present: there is nothing to repair")
        broken, checked, last_hash = _walk(session)
        if broken is not None:
            raise AuditRepairRefused(
                f"record {broken.first_bad_seq} does not verify ({broken.reason}): "
                "the head is not recreated over a damaged trail"
            )
        session.add(AuditHead(id=1, seq=checked, hash=last_hash))
        session.flush()
        return append(
            session,
            event=AuditEvent.audit_head_repaired,
            actor=actor,
            data={"seq": checked, "hash": last_hash},
            at=at,
        )


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
    at: datetime = Field(sa_type=UTCDateTime)  # the writer's clock, never a default
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


# The Core statements that append (no ORM unit of work there), built once: building and
# keying a statement costs more than running these ones does.
_RECORDS = table_of(AuditRecord)
_HEAD = table_of(AuditHead)
_ADVANCE = sa.update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + sa.bindparam("count"))
_ADVANCE_RETURNING = _ADVANCE.returning(_HEAD.c.seq, _HEAD.c.hash)
_READ_HEAD = sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_SET_HEAD_HASH = sa.update(_HEAD).where(_HEAD.c.id == 1).values(hash=sa.bindparam("hash"))
_INSERT_RECORDS = sa.insert(_RECORDS)
_LAST_SEQ = sa.select(sa.func.max(_RECORDS.c.seq))
_CREATE_HEAD_POSTGRESQL = (
    postgresql.insert(_HEAD).values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing()
)
_CREATE_HEAD_SQLITE = (
    sqlite.insert(_HEAD).values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing()
)


def head_seq(session: Session) -> int:
    """The sequence number of the newest record (0 for none): it moves with every plan,
    apply, adoption and forgetting, so a reader can tell cheaply that nothing changed."""
    head = session.get(AuditHead, 1)
    return head.seq if head is not None else 0
