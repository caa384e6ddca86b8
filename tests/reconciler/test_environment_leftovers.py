"""Removing a lane deletes the Dokploy environment Setpoint created for it, once nothing is
left in it; an environment it found, or one that still holds anything, stays."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from reconciler.core.apply import apply_plan
from reconciler.core.inventory import Owned
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan
from reconciler.errors import ActionFailed
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.execute import ProductExecutor
from reconciler.kinds.product.health import health_checks_of
from reconciler.kinds.product.observed import ObservedEnvironment, ObservedProductLane
from reconciler.kinds.product.ops import DOKPLOY, ENVIRONMENT, Op
from reconciler.kinds.product.route_moves import RoutePlan
from reconciler.kinds.product.rule_input import SecretFacts
from reconciler.records import ownership
from reconciler.runtime import Runtime
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import dokploy, store_fleet
from tests.support.fleets import converge

TESTING = "product:docs-site/testing"  # the example lane in its own `testing` environment


QA_LANE = """\
    - name: qa
      image: ghcr.io/acme/docs:main
      environment: testing
"""


def _fleet_without_testing_lane(tmp_path: Path, instead: str = "") -> Path:
    """The example fleet without docs-site's testing lane, with `instead` in its place."""
    fleet = tmp_path / "fleet"
    fleet.mkdir(exist_ok=True)
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        (fleet / file.name).write_text(file.read_text())
    docs = fleet / "docs-site.yaml"
    text = docs.read_text()
    start, end = text.index("    - name: testing"), text.index("    - name: prod")
    docs.write_text(text[:start] + instead + text[end:])
    return fleet


async def _environment_named(client: DokployClient, project: str, name: str) -> str | None:
    for found in await client.project_all():
        if found.name == project:
            return next((e.environment_id for e in found.environments if e.name == name), None)
    return None


async def _remove_testing_lane(runtime: Runtime, engine: Engine, tmp_path: Path) -> Plan:
    store_fleet(engine, _fleet_without_testing_lane(tmp_path), prune=True)
    return await compute_plan(runtime)


async def test_removing_a_lane_deletes_the_environment_setpoint_created_for_it(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    client = dokploy(runtime)
    environment_id = await _environment_named(client, "docs", "testing")
    assert environment_id is not None
    [claimed] = [
        o for o in ownership.snapshot(engine).for_lane(TESTING) if o.object_type == ENVIRONMENT
    ]
    assert claimed.object_id == environment_id

    plan = await _remove_testing_lane(runtime, engine, tmp_path)
    mine = {a.op: a for a in plan.actions if a.lane == TESTING}
    assert set(mine) == {Op.delete_service, Op.delete_environment}
    deleting = mine[Op.delete_environment]
    assert deleting.target == "dokploy:environment/docs/testing"
    assert deleting.depends_on == [mine[Op.delete_service].id]  # after the service is gone
    assert plan.deletions == 2  # the blast-radius guard counts the environment too
    assert (await apply_plan(runtime, plan.plan_id)).ok

    assert await _environment_named(client, "docs", "testing") is None
    assert await _environment_named(client, "docs", "production") is not None
    assert ownership.snapshot(engine).for_lane(TESTING) == []
    settled = await compute_plan(runtime)
    assert settled.actions == [] and TESTING not in settled.lanes


async def test_an_environment_that_was_there_before_stays(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    client = dokploy(runtime)
    made = await client.project_create("docs")
    existing = await client.environment_create(made.project.project_id, "testing")
    await converge(runtime)
    owned = ownership.snapshot(engine).for_lane(TESTING)
    assert [o.object_type for o in owned] == ["application"]  # found, so never claimed

    plan = await _remove_testing_lane(runtime, engine, tmp_path)
    assert [a.op for a in plan.actions if a.lane == TESTING] == [Op.delete_service]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert await _environment_named(client, "docs", "testing") == existing.environment_id


async def test_an_environment_holding_another_service_stays(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    client = dokploy(runtime)
    environment_id = await _environment_named(client, "docs", "testing")
    assert environment_id is not None
    someone_elses = await client.application_create("hand-made", environment_id)

    plan = await _remove_testing_lane(runtime, engine, tmp_path)
    assert [a.op for a in plan.actions if a.lane == TESTING] == [Op.delete_service]
    assert (
        f"{TESTING}: environment docs/testing it created is kept: it still holds "
        f"{someone_elses.application_id}"
    ) in plan.notes
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert await _environment_named(client, "docs", "testing") == environment_id
    assert (await client.application_one(someone_elses.application_id)).name == "hand-made"


async def test_a_lane_left_in_the_environment_takes_it_over_and_removes_it_last(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    client = dokploy(runtime)
    environment_id = await _environment_named(client, "docs", "testing")
    qa = "product:docs-site/qa"

    store_fleet(engine, _fleet_without_testing_lane(tmp_path, QA_LANE), prune=True)
    plan = await compute_plan(runtime)
    assert Op.delete_environment not in {a.op for a in plan.actions}
    [taking] = [a for a in plan.actions if a.op == Op.take_environment]
    assert (taking.lane, taking.params["from_lane"]) == (qa, TESTING)
    assert (await apply_plan(runtime, plan.plan_id)).ok
    # The removed lane leaves nothing behind; the lane still there owns the environment.
    assert ownership.snapshot(engine).for_lane(TESTING) == []
    mine = [o for o in ownership.snapshot(engine).for_lane(qa) if o.object_type == ENVIRONMENT]
    assert [o.object_id for o in mine] == [environment_id]

    store_fleet(engine, _fleet_without_testing_lane(tmp_path), prune=True)
    last = await compute_plan(runtime)
    assert {a.op for a in last.actions if a.lane == qa} == {
        Op.delete_service,
        Op.delete_environment,
    }
    assert (await apply_plan(runtime, last.plan_id)).ok
    assert await _environment_named(client, "docs", "testing") is None


def _removed_lane_owning(environment: ObservedEnvironment, deleted: frozenset[str]) -> list[str]:
    """The ops a removed lane owning only `environment` proposes (its service already gone,
    or deleted by this plan when listed in `deleted`)."""
    observed = ObservedProductLane(environments=(environment,))
    routes = RoutePlan(deleted=deleted)
    diff = diff_product_lane(TESTING, None, observed, SecretFacts("salt", {}), routes=routes)
    return [a.op for a in diff.actions]


def _owned_environment(name: str) -> Owned:
    return Owned(DOKPLOY, ENVIRONMENT, f"env-{name}", name, "product", TESTING, False, False)


def _seen(name: str) -> ObservedEnvironment:
    return ObservedEnvironment(
        owned=_owned_environment(name), found=True, name=name, project="docs"
    )


def test_the_default_environment_and_one_holding_a_database_are_never_deleted() -> None:
    assert _removed_lane_owning(_seen("testing"), frozenset()) == [Op.delete_environment]
    assert _removed_lane_owning(_seen("production"), frozenset()) == []
    assert _removed_lane_owning(replace(_seen("staging"), is_default=True), frozenset()) == []
    assert _removed_lane_owning(replace(_seen("testing"), databases=1), frozenset()) == []
    held = replace(_seen("testing"), service_ids=frozenset({"app-1"}))
    assert _removed_lane_owning(held, frozenset()) == []
    assert _removed_lane_owning(held, frozenset({"app-1"})) == [Op.delete_environment]


async def test_an_environment_that_gained_a_service_after_planning_is_not_deleted(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    """Dokploy may remove an environment with what it holds: the deletion reads it again."""
    await converge(runtime)
    client = dokploy(runtime)
    plan = await _remove_testing_lane(runtime, engine, tmp_path)
    [deleting] = [a for a in plan.actions if a.op == Op.delete_environment]
    environment_id = deleting.params["environment_id"]
    late = await client.application_create("late-comer", environment_id)  # the service stays

    executor = ProductExecutor(
        client=client, salt="salt", health_check=health_checks_of(runtime), clock=runtime.clock
    )
    [service] = [a for a in plan.actions if a.op == Op.delete_service and a.lane == TESTING]
    await executor.execute(service)
    with pytest.raises(ActionFailed, match=f"now holds {late.application_id}; left in place"):
        await executor.execute(deleting)
    assert await _environment_named(client, "docs", "testing") == environment_id
