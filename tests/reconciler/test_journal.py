"""Group commit: concurrent writers share transactions, and one bad write fails only itself."""

from __future__ import annotations

import anyio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.core.journal import Journal, WriteUnit
from reconciler.errors import SecretInAuditRecord
from reconciler.records import audit
from reconciler.records.audit import AuditEntry
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.runtime import utcnow
from reconciler.secret_values import SecretValue, register_secret


def _unit(index: int, data: object = None) -> WriteUnit:
    entry = AuditEntry(AuditEvent.action_result, "test", action_id=f"a{index}", data={"n": data})
    return lambda _session: [entry]


async def test_concurrent_writers_share_commits_and_every_record_lands(engine: Engine) -> None:
    journal = Journal(engine, clock=utcnow)

    async def writer(index: int) -> None:
        await journal.write(_unit(index, index))

    async with anyio.create_task_group() as group:
        for index in range(40):
            group.start_soon(writer, index)
    with session_scope(engine) as session:
        assert audit.verify_chain(session).ok
        written = sorted(r.data["n"] for r in audit.list_records(session, limit=100))
    assert written == list(range(40))
    assert journal.commits < 40  # writers that arrived during a commit shared the next one


async def test_a_bad_write_fails_alone(engine: Engine) -> None:
    journal = Journal(engine, clock=utcnow)
    secret = SecretValue("s3cret-value-that-must-not-leak")
    register_secret(secret)
    results: dict[str, BaseException | None] = {}

    async def writer(name: str, data: object) -> None:
        try:
            await journal.write(_unit(0, data))
            results[name] = None
        except BaseException as exc:
            results[name] = exc

    async with anyio.create_task_group() as group:
        group.start_soon(writer, "good-1", "fine")
        group.start_soon(writer, "bad", secret.reveal())
        group.start_soon(writer, "good-2", "also fine")
    assert isinstance(results["bad"], SecretInAuditRecord)
    assert results["good-1"] is None and results["good-2"] is None
    with Session(engine) as session:
        assert len(audit.list_records(session)) == 2 and audit.verify_chain(session).ok
