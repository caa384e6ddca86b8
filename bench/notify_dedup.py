"""Benchmark: what a pass's notifications cost when many lanes are in trouble at once.

Records the events of N Degraded lanes for two sinks on a fresh SQLite database (as the
end of a pass does: read the lanes' status, make the events, add the rows no sink has yet),
then the same again, as every later pass that sees the same state does (nothing new is
recorded: the deduplication is the whole cost). Nothing is sent.

    uv run python bench/notify_dedup.py [--lanes 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from reconciler.core import notifications
from reconciler.kinds import all_kinds
from reconciler.records import status
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=500)
    lanes = parser.parse_args().lanes
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        keys = [f"product:p{i}/testing" for i in range(lanes)]
        status.record_all(
            engine,
            [status.StatusUpdate(k, status.degraded("503")) for k in keys],
            now=utcnow(),
        )
        sinks = {"a": SecretStr("signed+http://127.0.0.1:9/a"), "b": SecretStr("ntfy://t")}
        settings = Settings(
            database_url="sqlite://", notify_sinks=sinks, notify_webhook_secret=SecretStr("k" * 32)
        )
        runtime = Runtime(engine, settings, "bench", all_kinds)
        news = [notifications.LaneNewsItem(k, "degraded", "") for k in keys]
        for label in ("first pass", "same state again"):
            started = time.perf_counter()
            rows = notifications.status_rows(runtime, keys)
            events = notifications.events_of_pass(settings, news, rows)
            added = notifications.record_events(runtime, list(sinks), events)
            took = (time.perf_counter() - started) * 1000
            print(
                f"{label}: {len(events)} events x {len(sinks)} sinks, {added} new rows, {took:.0f} ms"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
