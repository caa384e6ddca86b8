"""`onFailedHealth: rollback` over any sequence of releases and scheduled passes (issue 27).

The rule: the pass that sees a release fail its health check writes the lane's newest
known-good state back and, the lane being `auto-safe`, applies it in that same pass; a lane
is rolled back once per failing release, never from a generation a rollback wrote. Each
example runs on a database and a Dokploy emulator of its own.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.dokploy.emulator import Emulator, create_app
from reconciler.loop.passes import reconcile_pass
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import Runtime
from reconciler.settings import Settings
from tests.providers.dokploy.fixtures import API_KEY
from tests.reconciler.conftest import store_fleet
from tests.support.emulated_runtime import emulated_runtime
from tests.support.notes_fleet import notes_fleet
from tests.support.rollback import ImageHealth, records, running

LANE = "product:notes/testing"
SERVICE = "notes-testing"


@dataclass(frozen=True)
class Release:
    healthy: bool
    passes: int  # scheduled passes before the next release


releases = st.lists(
    st.builds(Release, healthy=st.booleans(), passes=st.integers(min_value=1, max_value=3)),
    min_size=1,
    max_size=4,
)


@dataclass
class Model:
    """What the rule says the lane runs: each release's image, and the known-good images in
    the order passes found them converged and healthy."""

    known_good: list[str] = field(default_factory=list)
    running: str | None = None
    failing: bool = False  # the running release failed its check, not yet rolled back


@asynccontextmanager
async def fresh_runtime(folder: Path) -> AsyncIterator[tuple[Runtime, Emulator, ImageHealth]]:
    app = create_app(api_key=API_KEY, seed=11, build_seconds=0.01)
    emulator: Emulator = app.state.emulator
    workload = ImageHealth(emulator)
    settings = Settings(
        database_url="sqlite://", deploy_poll_seconds=0.01, health_backoff_seconds=0.001
    )
    url = f"sqlite:///{folder / 'setpoint.db'}"
    async with emulated_runtime(url, app, workload.app, settings) as runtime:
        yield runtime, emulator, workload


async def run_releases(plan: list[Release], folder: Path) -> None:
    async with fresh_runtime(folder) as (runtime, emulator, workload):
        model = Model()
        for number, release in enumerate(plan):
            image = f"ghcr.io/acme/notes@sha256:{number + 1:064x}"
            if not release.healthy:
                workload.bad.add(image)
            (folder / "notes.yaml").write_text(
                notes_fleet(image=image, on_failed_health="rollback")
            )
            store_fleet(runtime.database, folder / "notes.yaml", prune=True)
            await _passes(runtime, emulator, workload.bad, image, release.passes, model)


async def _passes(
    runtime: Runtime, emulator: Emulator, bad: set[str], image: str, passes: int, model: Model
) -> None:
    for step in range(passes):
        report = await reconcile_pass(runtime)
        result = next(r for r in report.lanes if r.lane == LANE)
        rolled = records(runtime, AuditEvent.lane_rolled_back)
        # Once per failing generation, and never from a generation a rollback wrote.
        sources = [r["from_generation"] for r in rolled]
        assert len(sources) == len(set(sources)), rolled
        assert not {r["generation"] for r in rolled} & set(sources), rolled
        if step == 0:  # the release is deployed by the first pass after it
            model.running, model.failing = image, image in bad
            assert running(emulator, SERVICE) == image
            continue
        if model.failing and model.known_good:
            # The pass that sees the failure rolls back and applies it: the state runs now.
            expected = model.known_good[-1]
            assert result.outcome == "rolled_back", result
            assert running(emulator, SERVICE) == expected, result
            assert rolled[0]["running"] == expected
            model.running, model.failing = expected, False
            continue
        if model.failing:
            assert result.outcome != "rolled_back", result  # nothing to go back to
            assert running(emulator, SERVICE) == model.running
            continue
        assert result.outcome == "converged", result
        assert running(emulator, SERVICE) == model.running
        if model.running is not None and model.running not in bad:
            model.known_good.append(model.running)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(releases)
def test_a_failing_release_is_rolled_back_once_in_the_pass_that_sees_it(
    plan: list[Release],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_releases(plan, Path(folder)))
