"""Item 4: status shows each lane's own last result, and forgets lanes with nothing left."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.presentation.console import render_status
from reconciler.records import status
from reconciler.records.status import LaneStatusRow
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy, owned_service_of, store_fleet
from tests.support.fleets import converge, example_fleet, hand_made_docs_service

DOCS = "product:docs-site/testing"


def rows(engine: Engine) -> dict[str, LaneStatusRow]:
    return {row.lane: row for row in status.all_statuses(engine)}


def shown(engine: Engine) -> str:
    console = Console(file=io.StringIO(), width=200, record=True)
    render_status(console, status.all_statuses(engine))
    return console.export_text()


def reason(row: LaneStatusRow) -> str:
    speaking = [c for c in row.conditions if c["status"] == "True" and c["type"] != "Ready"]
    return str((speaking or row.conditions)[0]["reason"])


async def test_a_pruned_not_owned_lane_whose_service_was_deleted_leaves_status(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    service_id = await hand_made_docs_service(runtime, "nginx:1")
    blocked = await compute_plan(runtime)
    assert BlockerType.not_owned in [b.type for b in blocked.blockers]
    assert reason(rows(engine)[DOCS]) == BlockerType.not_owned.value
    store_fleet(engine, example_fleet(tmp_path, without=("docs-site.yaml",)), prune=True)
    await dokploy(runtime).application_delete(service_id)
    await compute_plan(runtime)
    assert DOCS not in rows(engine)
    assert DOCS not in shown(engine) and service_id not in shown(engine)


async def test_a_pruned_lane_whose_owned_service_was_deleted_outside_leaves_status(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, DOCS)
    assert owned is not None and DOCS in rows(engine)
    store_fleet(engine, example_fleet(tmp_path, without=("docs-site.yaml",)), prune=True)
    await dokploy(runtime).application_delete(owned.object_id)
    plan = await compute_plan(runtime)
    # All that is left of the lane is the environment Setpoint created for it, now empty.
    assert [a.op for a in plan.lane_actions(DOCS)] == ["delete_environment"]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    await compute_plan(runtime)
    assert DOCS not in rows(engine) and DOCS not in shown(engine)


async def test_after_a_failed_apply_each_lane_shows_its_own_result(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    await converge(runtime)
    first = {lane: row.last_applied_plan for lane, row in rows(engine).items()}
    store_fleet(
        engine,
        example_fleet(
            tmp_path, edit=("docs-site.yaml", "ghcr.io/acme/docs:main", "ghcr.io/acme/docs:next")
        ),
    )
    owned = owned_service_of(engine, DOCS)
    assert owned is not None
    emulator.faults.fail_next_deploy(owned.object_id)
    plan = await compute_plan(runtime)
    assert {a.lane for a in plan.actions} == {DOCS}
    result = await apply_plan(runtime, plan.plan_id)
    assert not result.ok

    after = rows(engine)
    # A failed build is the lane's DeployFailed state (issue 22, item 5), named by its action.
    assert reason(after[DOCS]) == DEPLOY_FAILED.code
    assert "DeployFailed" in after[DOCS].conditions[0]["message"]
    # set_image succeeded before the deploy failed: this plan changed the lane.
    assert after[DOCS].last_applied_plan == plan.plan_id
    for lane, row in after.items():
        if lane != DOCS:  # untouched by the failed plan: their own last result and plan
            assert reason(row) == status.Reason.converged.value, lane
            assert row.last_applied_plan == first[lane], lane
    table = shown(engine)
    untouched = next(line for line in table.splitlines() if "product:shop/testing" in line)
    assert "Ready" in untouched and plan.plan_id not in untouched
