"""Benchmark: audit records per second, written the ways apply writes them.

Every record is durable when its transaction commits, so the rate is mostly commits per
second: the ways below differ in how many records share a commit, and in what each commit
costs.

- before: one ORM append per record, in its own transaction, as `record` worked before
  `append_many` (a lock-and-load SELECT, an ORM flush of the record and of the head).
- (a) single: one `record()` per record (today's `record`, a batch of one).
- (b) pairs: `record_many` of 2, an action's result and the next action's intent together.
- (c) batches of 8: `record_many` of 8, what an apply with 8 lanes in flight would commit at once.
- (d) 4 threads x pairs: 4 writers on one engine, each committing pairs concurrently.
- floor: a durable commit of a one-row UPDATE and nothing else, per "record": what the
  machine allows one writer at all, so (a) can be read against it on a busy machine.

Each run writes `--records` records in every way, the ways alternating in one process, so
drift on a shared machine falls on all of them alike; the table shows the median run. The
PostgreSQL database is a scratch one, created and dropped here like the tests' ones.

    uv run python bench/audit_rate.py
    uv run python bench/audit_rate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    uv run python bench/audit_rate.py --sqlite-only
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from reconciler.core.journal import WriteUnit
from reconciler.errors import SecretInAuditRecord
from reconciler.records import audit
from reconciler.records.audit import AuditEntry, AuditHead, AuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import make_engine, normalise_url
from reconciler.records.migrate import upgrade
from reconciler.runtime import utcnow

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
THREADS = 4

LANES = 8  # apply_concurrency's default


def entry(n: int) -> AuditEntry:
    """Record n of an apply: even ones an action's result, odd ones the next one's intent."""
    lane = f"product:p{n % 50}/prod"
    if n % 2:
        return AuditEntry(
            AuditEvent.action_intent,
            "bench",
            lane=lane,
            plan_id="plan-bench",
            action_id=f"act-{n}",
            data={"op": "deploy", "target": f"service:p{n % 50}-prod"},
        )
    return AuditEntry(
        AuditEvent.action_result,
        "bench",
        lane=lane,
        plan_id="plan-bench",
        action_id=f"act-{n}",
        data={
            "op": "deploy",
            "target": f"service:p{n % 50}-prod",
            "outputs": {"deploymentId": f"dep-{n}", "image": "ghcr.io/acme/p:main"},
            "result": "ok",
            "message": "deployed and healthy",
            "retry_after": 0.5,
        },
    )


def _before_lock_head(session: Session) -> AuditHead:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = AuditHead.__table__  # type: ignore[attr-defined]
    insert = dialect.insert(table).values(id=1, seq=0, hash=audit.GENESIS_HASH)
    session.execute(insert.on_conflict_do_nothing())
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one()


def before_record(engine: Engine, item: AuditEntry) -> None:
    """`record` as it was before append_many (91bc56c), kept here to compare against."""
    with audit.transaction(engine) as session:
        payload = audit._json_data(item.data)
        fields: dict[str, Any] = {
            "actor": item.actor,
            "lane": item.lane,
            "plan_id": item.plan_id,
            "action_id": item.action_id,
            "data": payload,
        }
        if audit._find_secret(fields, "record") is not None:
            raise SecretInAuditRecord("record")
        head = _before_lock_head(session)
        row = AuditRecord(
            seq=head.seq + 1,
            at=utcnow(),
            event=AuditEvent(item.event).value,
            prev_hash=head.hash,
            hash="",
            **fields,
        )
        row.hash = audit.record_hash(head.hash, row)
        head.seq, head.hash = row.seq, row.hash
        session.add(row)
        session.add(head)
        session.flush()


def write_before(engine: Engine, count: int) -> None:
    for n in range(count):
        before_record(engine, entry(n))


def write_single(engine: Engine, count: int) -> None:
    for n in range(count):
        item = entry(n)
        audit.record(
            engine,
            event=item.event,
            actor=item.actor,
            lane=item.lane,
            plan_id=item.plan_id,
            action_id=item.action_id,
            data=item.data,
            at=utcnow(),
        )


def write_batches(size: int) -> Callable[[Engine, int], None]:
    def write(engine: Engine, count: int) -> None:
        for first in range(0, count, size):
            audit.record_many(
                engine, [entry(n) for n in range(first, min(first + size, count))], at=utcnow()
            )

    return write


def write_pairs_in_threads(engine: Engine, count: int) -> None:
    failures: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for first in range(offset * 2, count, THREADS * 2):
                audit.record_many(
                    engine, [entry(first), entry(first + 1)][: count - first], at=utcnow()
                )
        except BaseException as error:  # a thread's exception is otherwise lost
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def write_as_apply(engine: Engine, count: int) -> None:
    """What `apply_plan` does: LANES lanes at once, each committing through the journal one
    write per action (the last action's result with this action's intent), then a side
    effect (here an await that yields to the other lanes)."""
    import anyio

    from reconciler.core.journal import Journal

    journal = Journal(engine, clock=utcnow)

    def _unit(pair: list[AuditEntry]) -> WriteUnit:
        return lambda _session: pair

    async def lane(offset: int) -> None:
        for first in range(offset * 2, count, LANES * 2):
            pair = [entry(first), entry(first + 1)][: count - first]
            await journal.write(_unit(pair))
            await anyio.lowlevel.checkpoint()

    async def lanes() -> None:
        async with anyio.create_task_group() as group:
            for offset in range(LANES):
                group.start_soon(lane, offset)

    anyio.run(lanes)


def write_floor(engine: Engine, count: int) -> None:
    for _ in range(count):
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE bench_floor SET n = n + 1 WHERE id = 1"))


WAYS: dict[str, Callable[[Engine, int], None]] = {
    "before: ORM append, 1 per commit": write_before,
    "(a) `record()`, 1 per commit": write_single,
    "(b) pairs, 2 per commit": write_batches(2),
    "(c) batches of 8 per commit": write_batches(8),
    f"(d) {THREADS} threads x pairs": write_pairs_in_threads,
    f"(e) as apply writes them: {LANES} lanes through the journal": write_as_apply,
    "floor: empty durable commit, 1 per commit": write_floor,
}
AUDITED = [name for name in WAYS if not name.startswith("floor")]


def count_records(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM audit_records")).scalar_one())


def measure(engine: Engine, records: int, runs: int) -> dict[str, list[float]]:
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, n INTEGER)"))
        connection.execute(sa.text("INSERT INTO bench_floor VALUES (1, 0)"))
    rates: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(runs):
        for name, write in WAYS.items():
            before = count_records(engine)
            started = time.perf_counter()
            write(engine, records)
            elapsed = time.perf_counter() - started
            written = count_records(engine) - before
            assert written == (records if name in AUDITED else 0), (name, written)
            rates[name].append(records / elapsed)
    with Session(engine) as session:
        verified = audit.verify_chain(session)
    assert verified.ok and verified.checked == records * runs * len(AUDITED), verified
    return rates


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'audit-bench.db'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(base_url: str) -> Iterator[Engine]:
    name = f"setpoint_bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = make_url(normalise_url(base_url)).set(database=name)
        engine = make_engine(url.render_as_string(hide_password=False))
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """Median records/s (slowest and fastest run), and the median of each run's ratio to
    `before` in the same run, which drift on a shared machine moves far less."""
    backends = list(results)
    lines = [
        "| way | " + " | ".join(f"{b} records/s | {b} x before" for b in backends) + " |",
        "|---|" + "---:|---:|" * len(backends),
    ]
    before = next(iter(WAYS))
    for name in WAYS:
        cells = []
        for backend in backends:
            rates = results[backend][name]
            spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
            ratios = [r / b for r, b in zip(rates, results[backend][before], strict=True)]
            cells.append(f"{statistics.median(rates):,.0f} ({spread})")
            cells.append(f"{statistics.median(ratios):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--records", type=int, default=1000, help="records per way per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    postgres_version = ""
    with sqlite_engine() as engine:
        results["SQLite"] = measure(engine, args.records, args.runs)
    if not args.sqlite_only:
        with postgres_engine(args.database_url) as engine:
            results["PostgreSQL"] = measure(engine, args.records, args.runs)
            with engine.connect() as connection:
                version = connection.execute(sa.text("SHOW server_version")).scalar_one()
            postgres_version = f"PostgreSQL {version}, "
    print(
        f"{args.records} records per way per run, {args.runs} runs, min-max in brackets; "
        f"SQLite {sqlite3.sqlite_version}, {postgres_version}load average "
        + " ".join(f"{load:.1f}" for load in os.getloadavg())
    )
    print(table(results))


if __name__ == "__main__":
    main()
