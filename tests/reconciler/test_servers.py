"""A product that names a Dokploy server gets its services created there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.runtime import Runtime
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import dokploy, store_fleet


def docs_on_server(tmp_path: Path, server: str) -> Path:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    text = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    (fleet / "docs-site.yaml").write_text(
        text.replace("    project: docs\n", f"    project: docs\n    server: {server}\n")
    )
    return fleet


async def test_services_are_created_on_the_named_server(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    server = emulator.add_server("build-1")
    store_fleet(engine, docs_on_server(tmp_path, "build-1"), prune=True)
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert (await apply_plan(runtime, plan.plan_id)).ok
    created = next(
        a
        for p in await dokploy(runtime).project_all()
        for e in p.environments
        for a in e.applications
        if a.name == "docs-site-testing"
    )
    app = await dokploy(runtime).application_one(created.application_id)
    assert app.server_id == server["serverId"]
    assert (await compute_plan(runtime, ["product:docs-site/testing"])).actions == []


async def test_an_unknown_server_blocks_the_lane(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    store_fleet(engine, docs_on_server(tmp_path, "nowhere"), prune=True)
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert plan.actions == []
    assert [(b.type, b.message) for b in plan.blockers] == [
        (BlockerType.observation_incomplete, "Dokploy has no server named 'nowhere'")
    ]
