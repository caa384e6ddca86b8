"""Benchmark: CPU per commit of an apply's journal (`reconciler/core/journal.py`).

Each lane writes what an apply of two actions writes, in the journal's own units: the first
intent (with its lease proof), the first result (the object claimed) carried with the next
intent, then the last result (the object's facts). Three commits per lane, one after the
other, on SQLite in a temporary directory; the figure is CPU seconds of this process
(`time.process_time`, the journal's worker threads included) per commit. No Dokploy, no
event loop contention: the cost of the records alone, which the first apply pays about
once per action (bench/race.py).

    uv run python bench/journal_commits.py                # 300 lanes, 900 commits, 3 runs
    uv run python bench/journal_commits.py --lanes 50 --runs 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.core.journal import Journal, WriteUnit
from reconciler.core.outcomes import Claim, Facts, ObjectRef
from reconciler.records import leases, ownership
from reconciler.records.audit import AuditEntry
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import utcnow

HOLDER = leases.Holder(label="bench")


def intent(lane: str, action: str) -> WriteUnit:
    data = {"op": "deploy", "effect": "update", "target": lane, "risk": "low", "changes": []}
    entry = AuditEntry(AuditEvent.action_intent, "bench", lane, "plan-1", action, data)

    def write(session: Session) -> list[AuditEntry]:
        leases.confirm(session, lane, HOLDER, utcnow())
        return [entry]

    return write


def result(lane: str, action: str, ref: ObjectRef, *, claim: bool) -> WriteUnit:
    data = {"op": "deploy", "target": lane, "outputs": {"id": ref.object_id}, "result": "ok"}
    entry = AuditEntry(AuditEvent.action_result, "bench", lane, "plan-1", action, data)

    def write(session: Session) -> list[AuditEntry]:
        ownership.apply_changes(
            session,
            kind="product",
            lane=lane,
            claims=[Claim(ref, lane)] if claim else [],
            facts=[] if claim else [Facts(ref, {"deployed_config_hash": action})],
            releases=[],
            now=utcnow(),
        )
        return [entry]

    return write


async def one_run(engine: Engine, lanes: Sequence[str]) -> tuple[float, int]:
    journal = Journal(engine, clock=utcnow)
    started = time.process_time()
    for index, lane in enumerate(lanes):
        ref = ObjectRef("dokploy", "application", f"app-{index}")
        await journal.write(intent(lane, "a1"))
        await journal.write(result(lane, "a1", ref, claim=True), intent(lane, "a2"))
        await journal.write(result(lane, "a2", ref, claim=False))
    return time.process_time() - started, journal.commits


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lanes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    per_commit_ms = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="setpoint-bench-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            lanes = [f"product:p{i}/prod" for i in range(args.lanes)]
            leases.take_all(engine, lanes, HOLDER, 600, clock=utcnow)
            cpu, commits = anyio.run(one_run, engine, lanes)
            engine.dispose()
        per_commit_ms.append(cpu / commits * 1000)
        print(f"run {run + 1}: {commits} commits, {cpu:.2f} s CPU, {per_commit_ms[-1]:.2f} ms each")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"median {statistics.median(per_commit_ms):.2f} ms CPU per commit "
        f"({min(per_commit_ms):.2f}-{max(per_commit_ms):.2f}); load average {load}"
    )


if __name__ == "__main__":
    main()
