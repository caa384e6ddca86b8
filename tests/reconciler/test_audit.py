"""The audit chain: durable, ordered, tamper-evident, and never a home for a secret."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from desired_state.secrets import SecretRef
from reconciler.errors import SecretInAuditRecord
from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import make_engine, session_scope
from reconciler.records.leases import LaneLease
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from reconciler.secret_values import SecretValue, resolve


def _fill(engine: Engine, count: int) -> None:
    for n in range(count):
        audit.record(
            engine,
            event=AuditEvent.action_result,
            actor="tester",
            lane=f"shop/lane-{n % 2}",
            plan_id=f"plan-{n // 2}",
            action_id=f"a{n}",
            data={"n": n, "ok": True, "detail": {"ratio": 0.5, "tags": ["x", "y"]}},
            at=utcnow(),
        )


def _verify(engine: Engine) -> audit.ChainVerification:
    with Session(engine) as session:
        return audit.verify_chain(session)


def test_records_are_committed_linked_and_verify(engine: Engine) -> None:
    first = audit.record(
        engine, event=AuditEvent.apply_started, actor="alice", plan_id="p1", at=utcnow()
    )
    second = audit.record(
        engine,
        event=AuditEvent.action_intent,
        actor="alice",
        plan_id="p1",
        action_id="a1",
        at=utcnow(),
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64 and second.prev_hash == first.hash
    # Durable before return: a separate connection sees the intent at once.
    with engine.connect() as other:
        events = other.execute(sa.text("SELECT event FROM audit_records ORDER BY seq")).all()
    assert [e for (e,) in events] == ["apply_started", "action_intent"]
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=2)


def test_empty_log_verifies(engine: Engine) -> None:
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=0)


def test_edited_record_is_detected(engine: Engine) -> None:
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET actor = 'mallory' WHERE seq = 3"))
    result = _verify(engine)
    assert not result.ok and result.first_bad_seq == 3 and result.checked == 2
    assert result.reason is not None and "edited" in result.reason


def test_edited_data_is_detected(engine: Engine) -> None:
    _fill(engine, 3)
    with Session(engine) as session:
        row = audit.get_record(session, 2)
        assert row is not None
        row.data = {**row.data, "ok": False}
        session.add(row)
        session.commit()
    assert _verify(engine).first_bad_seq == 2


def test_deleted_record_is_detected(engine: Engine) -> None:
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_records WHERE seq = 2"))
    result = _verify(engine)
    assert not result.ok and result.first_bad_seq == 2
    assert result.reason == "record 2 is missing"


def test_truncated_tail_is_detected_by_the_head(engine: Engine) -> None:
    _fill(engine, 4)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_records WHERE seq = 4"))
    result = _verify(engine)
    assert not result.ok and result.first_bad_seq == 4 and result.checked == 3


def test_reordered_records_are_detected(engine: Engine) -> None:
    _fill(engine, 4)
    with engine.begin() as conn:  # swap records 2 and 3 by renumbering them
        conn.execute(sa.text("UPDATE audit_records SET seq = 100 WHERE seq = 2"))
        conn.execute(sa.text("UPDATE audit_records SET seq = 2 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit_records SET seq = 3 WHERE seq = 100"))
    result = _verify(engine)
    assert not result.ok and result.first_bad_seq == 2


def test_concurrent_appenders_never_fork_the_chain(database_url: str, engine: Engine) -> None:
    writers, each = 4, 8
    engines = [make_engine(database_url) for _ in range(writers)]
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(own: Engine, n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                audit.record(
                    own, event=AuditEvent.action_result, actor=f"w{n}", data={"i": i}, at=utcnow()
                )
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            failures.append(error)

    threads = [threading.Thread(target=write, args=(e, n)) for n, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for own in engines:
        own.dispose()
    assert failures == []
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=writers * each)


def test_a_resolved_secret_is_refused_and_not_echoed(engine: Engine) -> None:
    value = resolve(
        SecretRef.model_validate({"fromEnv": "SETPOINT_SECRET_DB_PASS"}),
        environ={"SETPOINT_SECRET_DB_PASS": "hunter2-audit-xyz"},
    )
    with pytest.raises(SecretInAuditRecord) as raised:
        audit.record(
            engine,
            event=AuditEvent.action_result,
            actor="alice",
            data={"env": {"DATABASE_URL": f"postgres://app:{value.reveal()}@db/app"}},
            at=utcnow(),
        )
    assert "hunter2-audit-xyz" not in str(raised.value)
    assert "data.env.DATABASE_URL" in str(raised.value)
    with pytest.raises(SecretInAuditRecord):
        audit.record(engine, event=AuditEvent.adopted, actor=value.reveal(), at=utcnow())
    with Session(engine) as session:
        assert audit.list_records(session) == []  # nothing was written, the chain is intact


def test_a_secret_value_object_is_stored_masked(engine: Engine) -> None:
    value = SecretValue("not-registered-directly")
    row = audit.record(
        engine, event=AuditEvent.action_result, actor="a", data={"v": value}, at=utcnow()
    )
    assert row.data == {"v": "SecretValue(***)"}


def test_list_filters_and_tail(engine: Engine) -> None:
    _fill(engine, 10)
    audit.record(
        engine, event=AuditEvent.plan_blocked, actor="b", lane="product:shop/prod", at=utcnow()
    )
    with Session(engine) as session:
        assert [r.seq for r in audit.list_records(session, limit=3)] == [9, 10, 11]
        assert [r.seq for r in audit.list_records(session, since_seq=2, limit=3)] == [3, 4, 5]
        lane0 = audit.list_records(session, lane="shop/lane-0")
        assert [r.seq for r in lane0] == [1, 3, 5, 7, 9]
        assert [r.seq for r in audit.list_records(session, plan_id="plan-1")] == [3, 4]
        blocked = audit.list_records(session, event=AuditEvent.plan_blocked)
        assert [r.lane for r in blocked] == ["product:shop/prod"]
        assert audit.get_record(session, 99) is None


def test_export_jsonl_is_stable_and_carries_the_chain(engine: Engine) -> None:
    _fill(engine, 3)
    out = io.StringIO()
    with Session(engine) as session:
        assert audit.export_jsonl(session, out, lane="shop/lane-0") == 2
    lines = out.getvalue().splitlines()
    first = json.loads(lines[0])
    assert list(first) == sorted(first)
    assert first["seq"] == 1 and first["prev_hash"] == "0" * 64 and len(first["hash"]) == 64
    assert first["data"]["detail"] == {"ratio": 0.5, "tags": ["x", "y"]}
    again = io.StringIO()
    with Session(engine) as session:
        audit.export_jsonl(session, again, lane="shop/lane-0")
    assert again.getvalue() == out.getvalue()


def test_numbers_read_back_as_hashed(engine: Engine) -> None:
    numbers = {"big": 1e20, "huge": -1e100, "tiny": 1e-7, "neg_zero": -0.0, "ms": 12.345}
    row = audit.record(engine, event=AuditEvent.verify_result, actor="a", data=numbers, at=utcnow())
    assert row.data["big"] == 10**20 and row.data["tiny"] == 1e-7
    assert _verify(engine).ok


def _entry(
    n: int, *, actor: str = "tester", plan_id: str = "plan-1", data: dict[str, Any] | None = None
) -> audit.AuditEntry:
    return audit.AuditEntry(
        event=AuditEvent.action_result,
        actor=actor,
        lane=f"shop/lane-{n % 2}",
        plan_id=plan_id,
        action_id=f"a{n}",
        data=data or {"n": n, "big": 1e20, "detail": {"ratio": 0.5, "tags": ["x", "y"]}},
    )


def test_a_batch_is_chained_stored_as_returned_and_verifies(engine: Engine) -> None:
    first = audit.record(
        engine, event=AuditEvent.apply_started, actor="alice", plan_id="p", at=utcnow()
    )
    rows = audit.record_many(engine, [_entry(n) for n in range(5)], at=utcnow())
    assert [r.seq for r in rows] == [2, 3, 4, 5, 6]
    assert [r.prev_hash for r in rows] == [first.hash, *(r.hash for r in rows[:-1])]
    assert rows[0].data["big"] == 10**20  # as PostgreSQL's jsonb reads it back
    with Session(engine) as session:
        stored = audit.list_records(session, since_seq=1)
        assert [audit.record_dict(r) for r in stored] == [audit.record_dict(r) for r in rows]
        assert audit.verify_chain(session) == audit.ChainVerification(ok=True, checked=6)
        head = session.get(audit.AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (6, rows[-1].hash)


def test_an_empty_batch_writes_nothing(engine: Engine) -> None:
    assert audit.record_many(engine, [], at=utcnow()) == []
    with Session(engine) as session:
        assert session.get(audit.AuditHead, 1) is None
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=0)


def test_a_batch_carrying_a_secret_rolls_back_the_whole_transaction(engine: Engine) -> None:
    audit.record(engine, event=AuditEvent.apply_started, actor="alice", at=utcnow())
    value = resolve(
        SecretRef.model_validate({"fromEnv": "SETPOINT_SECRET_TOKEN"}),
        environ={"SETPOINT_SECRET_TOKEN": "batch-secret-7f3a9"},
    )
    leaky = _entry(2, data={"header": f"Bearer {value.reveal()}"})
    with pytest.raises(SecretInAuditRecord) as raised, audit.transaction(engine) as session:
        audit.append_many(
            session, [_entry(0)], at=utcnow()
        )  # written, then rolled back with the rest
        audit.append_many(session, [_entry(1), leaky, _entry(3)], at=utcnow())
    assert "batch-secret-7f3a9" not in str(raised.value)
    assert "data.header" in str(raised.value)
    with Session(engine) as session:
        assert [r.seq for r in audit.list_records(session)] == [1]
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=1)


def test_append_and_append_many_share_one_chain(engine: Engine) -> None:
    with audit.transaction(engine) as session:
        one = audit.append(
            session, event=AuditEvent.action_intent, actor="a", action_id="a1", at=utcnow()
        )
        pair = audit.append_many(session, [_entry(1), _entry(2)], at=utcnow())
        last = audit.append(session, event=AuditEvent.apply_finished, actor="a", at=utcnow())
    assert [r.seq for r in (one, *pair, last)] == [1, 2, 3, 4]
    audit.record(engine, event=AuditEvent.action_intent, actor="b", at=utcnow())
    audit.record_many(engine, [_entry(5)], at=utcnow())
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=6)


def test_the_callers_own_rows_commit_and_roll_back_with_the_records(engine: Engine) -> None:
    def lease(lane: str) -> LaneLease:
        return LaneLease(lane=lane, holder="tester", expires_at=utcnow(), acquired_at=utcnow())

    with audit.transaction(engine) as session:
        session.add(lease("kept"))
        audit.append_many(session, [_entry(0)], at=utcnow())
    value = resolve(
        SecretRef.model_validate({"fromEnv": "SETPOINT_SECRET_KEY"}),
        environ={"SETPOINT_SECRET_KEY": "rolled-back-9d2c1"},
    )
    leaky = _entry(1, data={"key": value.reveal()})
    with pytest.raises(SecretInAuditRecord), audit.transaction(engine) as session:
        session.add(lease("dropped"))
        audit.append_many(session, [leaky], at=utcnow())
    with Session(engine) as session:
        assert [row.lane for row in session.exec(select(LaneLease))] == ["kept"]
        assert [r.seq for r in audit.list_records(session)] == [1]


def test_a_session_that_read_the_head_verifies_after_appending(engine: Engine) -> None:
    with audit.transaction(engine) as session:
        assert audit.verify_chain(session).ok  # loads the head into this session
        audit.append_many(session, [_entry(0), _entry(1)], at=utcnow())
        assert audit.verify_chain(session) == audit.ChainVerification(ok=True, checked=2)


@pytest.mark.parametrize("engines_", ["one engine per writer", "one engine shared"])
def test_concurrent_batch_writers_never_fork_or_split_a_batch(
    database_url: str, engine: Engine, engines_: str
) -> None:
    # One engine per writer stands in for replicas; a shared one is threads of one process.
    writers, batches, size = 4, 6, 3
    shared = engines_ == "one engine shared"
    engines = [engine if shared else make_engine(database_url) for _ in range(writers)]
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(own: Engine, n: int) -> None:
        try:
            start.wait()
            for b in range(batches):
                entries = [_entry(i, actor=f"w{n}", plan_id=f"b{b}") for i in range(size)]
                audit.record_many(own, entries, at=utcnow())
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            failures.append(error)

    threads = [threading.Thread(target=write, args=(e, n)) for n, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for own in engines:
        if own is not engine:
            own.dispose()
    assert failures == []
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=writers * batches * size)
    with Session(engine) as session:
        rows = list(audit.iter_records(session))
    # Records committed together stay together: each batch fills consecutive seqs.
    for first in range(0, len(rows), size):
        batch = rows[first : first + size]
        assert len({(r.actor, r.plan_id) for r in batch}) == 1
        assert [r.action_id for r in batch] == [f"a{i}" for i in range(size)]


def test_sqlite_without_returning_advances_then_reads_the_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old-sqlite.db'}")
    upgrade(engine)
    engine.dialect.update_returning = False  # as SQLAlchemy sets it for SQLite before 3.35
    try:
        audit.record(engine, event=AuditEvent.apply_started, actor="a", at=utcnow())
        rows = audit.record_many(engine, [_entry(0), _entry(1)], at=utcnow())
        assert [r.seq for r in rows] == [2, 3]
        assert _verify(engine) == audit.ChainVerification(ok=True, checked=3)
    finally:
        engine.dispose()


def test_the_hash_of_a_record_is_what_it_always_was() -> None:
    # Chains already written must keep verifying: this digest is what record_hash gave
    # before append_many (91bc56c) for the same record.
    row = audit.AuditRecord(
        seq=7,
        at=datetime(2026, 11, 22, 4, 45, 10, 630168, tzinfo=UTC),
        actor="alice",
        event="action_result",
        lane="product:shop/prod",
        plan_id="plan-1",
        action_id="a1",
        data={"n": 1, "big": 10**20, "ratio": 0.5, "tags": ["x", "é"]},
        prev_hash="0" * 64,
        hash="",
    )
    expected = "4583141151f7292d0db57dd5df007399be26d5f2c60a347309f3b377528504de"
    assert audit.record_hash("0" * 64, row) == expected


def test_a_chain_written_one_orm_row_at_a_time_continues(engine: Engine) -> None:
    # As `append` stored records before append_many: ORM rows, with the head saved beside.
    prev = audit.GENESIS_HASH
    with Session(engine) as session:
        for seq in (1, 2):
            row = audit.AuditRecord(
                seq=seq,
                at=utcnow(),
                actor="old",
                event="adopted",
                data={"n": seq},
                prev_hash=prev,
                hash="",
            )
            row.hash = prev = audit.record_hash(prev, row)
            session.add(row)
        session.add(audit.AuditHead(id=1, seq=2, hash=prev))
        session.commit()
    rows = audit.record_many(engine, [_entry(0), _entry(1)], at=utcnow())
    assert (rows[0].seq, rows[0].prev_hash) == (3, prev)
    assert _verify(engine) == audit.ChainVerification(ok=True, checked=4)


async def test_a_repeated_plan_that_changes_nothing_is_audited_once(
    runtime: Runtime, engine: Engine
) -> None:
    """Issue 25, item 8: checking with `setpoint plan` does not fill the trail; a plan with
    something new (another digest) is recorded."""
    from reconciler.core.apply import apply_plan
    from reconciler.core.planning import compute_plan

    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    quiet = [await compute_plan(runtime) for _ in range(3)]
    assert all(not p.actions and not p.blockers for p in quiet)
    with session_scope(engine) as session:
        recorded = audit.list_records(session, event=AuditEvent.plan_computed, limit=50)
    digests = [r.data["digest"] for r in recorded if r.data]
    assert digests.count(quiet[0].digest) == 1
    assert first.digest in digests


def test_entries_appended_as_columns_are_stored_and_chained_as_records_are(
    engine: Engine,
) -> None:
    # The journal's way in (no record objects built): what it returns is what is stored,
    # in the same chain and with the same hashes as append_many's records.
    first = audit.record(
        engine, event=AuditEvent.apply_started, actor="alice", plan_id="p", at=utcnow()
    )
    with audit.transaction(engine) as session:
        written = audit.append_entries(session, [_entry(n) for n in range(3)], at=utcnow())
    audit.record_many(engine, [_entry(3)], at=utcnow())
    assert [c["seq"] for c in written] == [2, 3, 4]
    assert [c["prev_hash"] for c in written] == [first.hash, written[0]["hash"], written[1]["hash"]]
    assert written[0]["data"]["big"] == 10**20  # stored as it reads back
    with Session(engine) as session:
        stored = audit.list_records(session, since_seq=1)
        assert [audit.record_dict(r) for r in stored[:3]] == [
            {**c, "at": c["at"].astimezone(UTC).isoformat()} for c in written
        ]
        assert [audit.record_hash(r.prev_hash, r) for r in stored[:3]] == [
            c["hash"] for c in written
        ]
        assert audit.verify_chain(session) == audit.ChainVerification(ok=True, checked=5)
