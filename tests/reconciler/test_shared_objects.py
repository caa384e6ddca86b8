"""Objects that lanes of several kinds share (a product's project and environment, which its
previews use too) are made once: in one plan, and across replicas under a target lease.

Both emulators in process; each first run starts from an empty Dokploy and database.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator, create_app
from providers.github.client import GitHubClient
from providers.github.emulator import create_app as create_github
from reconciler.core.assembly import KindFacts, build_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlastRadiusGuard, Effect, Risk, Trigger
from reconciler.kinds import all_kinds
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.product.ops import PRODUCT_OPS
from reconciler.kinds.product.params import CreateProject, CreateService, Link
from reconciler.loop.passes import PassReport, reconcile_pass, start_pass
from reconciler.loop.targets import apply_guarded
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings
from tests.reconciler.conftest import Workload, store_fleet
from tests.support.health_probes import probe_answered_by
from tests.support.previews import notes_yaml

FIRST_RUNS = 50


def _notes_fleet(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "notes.yaml").write_text(notes_yaml().replace("secrets: ", "#secrets: "))
    return directory


@asynccontextmanager
async def _runtime(engine: Engine) -> AsyncIterator[Runtime]:
    """A scheduler's runtime on `engine`, with both emulators in process and one open PR."""
    app = create_app(api_key="k", seed=5, build_seconds=0.0)
    github_app = create_github(seed=3)
    github_app.state.emulator.add_repo("acme", "notes")
    github_app.state.emulator.open_pull("acme", "notes", labels=["preview"])

    health = probe_answered_by(Workload().app)

    async with (
        DokployClient(
            "http://dokploy.test", "k", timeout=2.0, transport=httpx.ASGITransport(app=app)
        ) as client,
        GitHubClient(
            "http://github.test",
            "ghp_previewtoken0123456789",
            transport=httpx.ASGITransport(app=github_app),
            timeout=2.0,
        ) as github,
    ):
        yield Runtime(
            database=engine,
            settings=Settings(database_url="sqlite://", deploy_poll_seconds=0.001),
            providers={
                "dokploy": client,
                HEALTH: HealthChecks(health),
                "github": github,
                "emulator": app.state.emulator,
            },
            kinds=all_kinds,
            actor="scheduler",
            environ={},
        )


def _emulator(runtime: Runtime) -> Emulator:
    return runtime.provider("emulator", Emulator)


def _names(emulator: Emulator) -> Counter[str]:
    """How many projects and environments carry each name."""
    state = emulator.state
    counted = Counter(f"project/{p['name']}" for p in state.projects.values())
    counted.update(
        f"environment/{state.projects[e['projectId']]['name']}/{e['name']}"
        for e in state.environments.values()
    )
    return counted


async def test_a_product_and_its_preview_make_their_project_once_over_50_first_runs(
    tmp_path: Path,
) -> None:
    fleet = _notes_fleet(tmp_path / "fleet")
    template = tmp_path / "template.db"
    made = make_engine(f"sqlite:///{template}")
    upgrade(made)
    store_fleet(made, fleet)
    made.dispose()
    doubled: list[tuple[int, dict[str, int]]] = []
    for run in range(FIRST_RUNS):
        database = tmp_path / f"run{run}.db"
        shutil.copyfile(template, database)  # an empty Setpoint each time, migrated once
        engine = make_engine(f"sqlite:///{database}")
        try:
            async with _runtime(engine) as runtime:
                report = await reconcile_pass(runtime)
                emulator = _emulator(runtime)
                outcomes = {r.lane: r.outcome for r in report.lanes}
                assert outcomes == {
                    "product:notes/testing": "applied",
                    "preview:notes/pr-1": "applied",
                }, report
                names = _names(emulator)
                if max(names.values()) > 1:
                    doubled.append((run, {k: v for k, v in names.items() if v > 1}))
        finally:
            engine.dispose()
    assert doubled == []


def test_one_plan_makes_a_shared_project_once_for_lanes_of_two_kinds() -> None:
    """The planner's rule, without a provider: a target two kinds' lanes share is one action,
    and the other kind's lane depends on it."""
    project = ProposedAction(
        key="p",
        op="create_project",
        target="dokploy:project/notes",
        reason="missing",
        params=CreateProject(name="notes"),
        provides=("project:notes",),
    )
    service = dataclasses.replace(
        project,
        key="s",
        op="create_application",
        target="dokploy:application/x",
        params=CreateService(environment=Link(ref="project:notes"), name="x"),
        after=("project:notes",),
        provides=(),
    )
    facts = KindFacts(ops=PRODUCT_OPS, guard=BlastRadiusGuard(), owned=0)
    plan = build_plan(
        diffs=[
            LaneDiff("product:notes/testing", [project, service]),
            LaneDiff("preview:notes/pr-1", [project, dataclasses.replace(service, target="y")]),
        ],
        kinds={"product": facts, "preview": facts},
        fingerprints={},
        generations={},
        desired_revision="r",
        created_by="t",
        now=utcnow(),
        ttl=timedelta(minutes=5),
    )
    creates = [a for a in plan.actions if a.op == "create_project"]
    assert len(creates) == 1 and creates[0].effect is Effect.create
    assert creates[0].risk is Risk.safe
    for action in plan.actions:
        if action.op == "create_application":
            assert action.depends_on == [creates[0].id]


async def test_two_replicas_making_one_shared_project_make_it_once(tmp_path: Path) -> None:
    """Two replicas on one database apply plans that each create the same project, at once:
    the target lease lets one through first, and the other finds the project it made."""
    fleet = _notes_fleet(tmp_path / "fleet")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store_fleet(engine, fleet)
    async with _runtime(engine) as first:
        emulator = _emulator(first)
        second_engine = make_engine(url)
        second = dataclasses.replace(first, database=second_engine, actor="replica-2")
        try:
            context = await start_pass(first, PassReport())  # discovery stores the PR's anchor
            plans = [
                await compute_plan(runtime, [lane])
                for runtime, lane in (
                    (first, "product:notes/testing"),
                    (second, "preview:notes/pr-1"),
                )
            ]
            for plan in plans:
                assert any(a.op == "create_project" for a in plan.actions), plan
            results: list[str] = []

            async def apply(runtime: Runtime, plan_id: str) -> None:
                result = await apply_guarded(runtime, context.registry, plan_id, Trigger.schedule)
                results.append(result.status)

            async with anyio.create_task_group() as group:
                group.start_soon(apply, first, plans[0].plan_id)
                group.start_soon(apply, second, plans[1].plan_id)
        finally:
            second_engine.dispose()
            engine.dispose()
        names = _names(emulator)
        assert names["project/notes"] == 1, names
        assert max(names.values()) == 1, names
