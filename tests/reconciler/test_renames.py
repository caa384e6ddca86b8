"""A plan that deletes one lane and creates a matching one says that it looks like a rename."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.reasons import ROUTE_CONFLICT
from reconciler.records import ownership
from reconciler.runtime import Runtime
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import dokploy, store_fleet
from tests.support.cli import Invoke


async def test_a_renamed_lane_is_noted_as_a_rename(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        (fleet / file.name).write_text(file.read_text())
    docs = fleet / "docs-site.yaml"
    docs.write_text(docs.read_text().replace("- name: testing", "- name: staging", 1))
    store_fleet(engine, fleet, prune=True)
    plan = await compute_plan(runtime)
    assert {a.lane for a in plan.actions if a.op == Op.delete_service} == {
        "product:docs-site/testing"
    }
    renames = [note for note in plan.notes if "looks like a rename" in note]
    assert renames == [
        "product:docs-site/staging: looks like a rename of product:docs-site/testing: this plan "
        "deletes dokploy:application/docs-site-testing and creates "
        "dokploy:application/docs-site-staging; nothing carries over between them"
    ]
    # An unrelated plan says nothing of the kind.
    assert not any("rename" in note for note in first.notes)


def _renamed_fleet(tmp_path: Path, replace: tuple[str, str]) -> Path:
    fleet = tmp_path / "fleet"
    fleet.mkdir(exist_ok=True)
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        (fleet / file.name).write_text(file.read_text())
    docs = fleet / "docs-site.yaml"
    docs.write_text(docs.read_text().replace(*replace, 1))
    return fleet


async def test_a_declared_rename_takes_over_the_service_instead_of_replacing_it(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    before = ownership.snapshot(engine).for_lane("product:docs-site/testing")
    renamed = ("- name: testing", "- name: staging\n      renamedFrom: testing")
    store_fleet(engine, _renamed_fleet(tmp_path, renamed), prune=True)

    plan = await compute_plan(runtime)
    assert [(a.lane, a.op) for a in plan.actions] == [
        ("product:docs-site/staging", Op.inherit_service)
    ]
    assert "takes over application 'docs-site-testing'" in plan.actions[0].reason
    assert not any("looks like a rename" in note for note in plan.notes)
    assert (await apply_plan(runtime, plan.plan_id)).ok

    after = ownership.snapshot(engine)
    assert after.for_lane("product:docs-site/testing") == []
    moved = {o.object_type: o for o in after.for_lane("product:docs-site/staging")}
    # The service, and the environment the old lane created, which goes with the new one.
    assert moved.keys() == {o.object_type for o in before} == {"application", "environment"}
    for previous in before:
        assert (moved[previous.object_type].object_id, moved[previous.object_type].name) == (
            previous.object_id,
            previous.name,
        )
    assert moved["application"].name == "docs-site-testing"
    settled = await compute_plan(runtime)
    assert settled.actions == [] and "product:docs-site/testing" not in settled.lanes


def test_a_rename_from_a_lane_that_still_exists_is_refused_at_its_field(
    setpoint: Invoke, tmp_path: Path
) -> None:
    fleet = _renamed_fleet(tmp_path, ("- name: prod", "- name: prod\n      renamedFrom: testing"))
    result = setpoint("validate", str(fleet))
    assert result.exit_code != 0
    assert "spec.lanes[1].renamedFrom" in result.output
    assert "lane 'testing' still exists in this product" in result.output


async def test_a_renamed_product_takes_its_lanes_services_along(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    fleet = _renamed_fleet(tmp_path, ("name: docs-site", "name: handbook"))
    docs = fleet / "docs-site.yaml"
    text = docs.read_text()
    for lane in ("testing", "prod"):
        text = text.replace(
            f"- name: {lane}", f"- name: {lane}\n      renamedFrom: docs-site/{lane}"
        )
    docs.write_text(text)
    store_fleet(engine, fleet, prune=True)

    plan = await compute_plan(runtime)
    assert sorted((a.lane, a.op) for a in plan.actions) == [
        ("product:handbook/prod", Op.inherit_service),
        ("product:handbook/testing", Op.inherit_service),
    ]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert (await compute_plan(runtime)).actions == []


async def test_a_renamed_product_with_domains_moves_them_in_one_plan(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    """No `renamedFrom`: new services, the old ones deleted, and their hosts moved over
    inside the plan (freed on the old service, then claimed on the new), not a
    route_conflict against a service the same plan deletes."""
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    store_fleet(engine, _renamed_fleet(tmp_path, ("name: docs-site", "name: handbook")), prune=True)

    plan = await compute_plan(runtime)
    assert plan.blockers == [b for b in plan.blockers if b.type == "blast_radius_exceeded"]
    by_id = {a.id: a for a in plan.actions}
    releases = [a for a in plan.actions if a.op == Op.release_domain]
    assert sorted(a.lane for a in releases) == [
        "product:docs-site/prod",
        "product:docs-site/testing",
    ]
    for release in releases:
        route = release.target.rsplit("/domain/", 1)[1]
        [claim] = [a for a in plan.actions if a.op == Op.upsert_domain and a.target.endswith(route)]
        assert release.id in claim.depends_on  # freed first, then claimed
        assert by_id[release.depends_on[0]].op == Op.create_application  # once it can be
        assert claim.lane == release.lane.replace("docs-site", "handbook")
    result = await apply_plan(runtime, plan.plan_id, allow_destroy=2)
    assert result.ok, result

    hosts = [(d["host"], d["applicationId"]) for d in emulator.state.domains.values()]
    owned = ownership.snapshot(engine)
    [new_prod] = owned.for_lane("product:handbook/prod")
    assert [h for h in hosts if h[0] == "docs.example.com"] == [
        ("docs.example.com", new_prod.object_id)
    ]
    assert owned.for_lane("product:docs-site/prod") == []
    assert (await compute_plan(runtime)).actions == []


async def test_a_renamed_lanes_host_someone_else_routes_too_stays_a_conflict(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    """Only a host no one but the plan's own deletions routes moves; a plan for the new
    lanes alone deletes nothing, so the old service still holds its hosts."""
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    client = dokploy(runtime)
    made = await client.project_create("hand-made")
    app = await client.application_create("by-hand", made.environment.environment_id)
    await client.domain_create(host="docs.example.com", port=80, application_id=app.application_id)
    store_fleet(engine, _renamed_fleet(tmp_path, ("name: docs-site", "name: handbook")), prune=True)

    plan = await compute_plan(runtime)
    [conflict] = [b for b in plan.blockers if b.type == ROUTE_CONFLICT.code]
    assert conflict.lane == "product:handbook/prod"
    assert "application 'by-hand'" in conflict.message
    assert "docs-site-prod" not in conflict.message  # the plan deletes that one
    assert [a.lane for a in plan.actions if a.op == Op.release_domain] == [
        "product:docs-site/testing"
    ]

    alone = await compute_plan(runtime, ["product:handbook/testing"])
    assert not [a for a in alone.actions if a.op in (Op.release_domain, Op.upsert_domain)]
    [held] = [b for b in alone.blockers if b.type == ROUTE_CONFLICT.code]
    assert "docs-site-testing" in held.message
