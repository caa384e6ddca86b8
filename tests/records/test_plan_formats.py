"""Plans stored before operation parameters were typed (format 1) still load and apply.

`tests/contracts/plans-v1/plans.json` holds plan bodies exactly as Setpoint stored them
at 06fae8b (see its README). Each loads through the plan store, every action's parameters
read back as its operation's model, and the ordering the stored plan had (`depends_on`)
is the ordering its upgraded `after`/`provides` refs describe.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from reconciler.core.assembly import KindFacts, build_plan
from reconciler.core.plan_files import stored_plan_of_file
from reconciler.core.plan_formats import body_digest, plan_of_body
from reconciler.core.plans import PLAN_FORMAT, Action, BlastRadiusGuard, Plan, kind_of_lane
from reconciler.errors import PlanFileRejected
from reconciler.kinds.base import OpSpec
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.kinds.product.ops import PRODUCT_OPS, Op
from reconciler.kinds.product.params import ReleaseDomain, UpsertDomain
from reconciler.kinds.product.policy import ApplyPolicy
from reconciler.kinds.product.rule_input import SecretFacts
from reconciler.kinds.runner.ops import RUNNER_OPS
from reconciler.records.database import session_scope
from reconciler.records.plan_store import StoredPlan, load
from reconciler.runtime import utcnow

FORMAT_1 = Path(__file__).parents[1] / "contracts" / "plans-v1" / "plans.json"
BODIES: list[dict[str, Any]] = json.loads(FORMAT_1.read_text(encoding="utf-8"))
OPS_OF_KIND = {"product": PRODUCT_OPS, "preview": PRODUCT_OPS, "runner": RUNNER_OPS}


def _spec(action: Action) -> OpSpec:
    return OPS_OF_KIND[kind_of_lane(action.lane)][action.op]


def _store_as_written(engine: Engine, body: dict[str, Any]) -> None:
    """The row an older Setpoint wrote: its body untouched."""
    plan = plan_of_body(body)
    with session_scope(engine) as session:
        session.add(
            StoredPlan(
                id=plan.plan_id,
                digest=body["digest"],
                desired_revision=plan.desired_revision,
                created_by=plan.created_by,
                created_at=plan.created_at,
                expires_at=plan.expires_at,
                lanes=plan.lanes,
                body=body,
            )
        )


def _ordering_of_refs(plan: Plan) -> dict[str, list[str]]:
    """Each action's dependencies as its `after`/`provides` refs describe them."""
    providers: dict[str, str] = {}
    described = {}
    for action in plan.actions:
        for ref in action.provides:
            providers[ref] = action.id
        described[action.id] = sorted({providers[r] for r in action.after if r in providers})
    return described


# Operations added after format 1, which no format 1 plan can hold.
NEWER_THAN_FORMAT_1 = {Op.take_environment, Op.delete_environment}


def test_the_fixture_holds_format_1_plans_of_every_operation() -> None:
    assert all("format" not in body for body in BODIES)
    ops = {a["op"] for body in BODIES for a in body["actions"]}
    assert ops == (set(PRODUCT_OPS) | set(RUNNER_OPS)) - NEWER_THAN_FORMAT_1


@pytest.mark.parametrize("body", BODIES, ids=[b["plan_id"] for b in BODIES])
def test_a_plan_stored_before_typed_parameters_loads_with_its_ordering_and_typed_params(
    engine: Engine, body: dict[str, Any]
) -> None:
    _store_as_written(engine, body)
    plan, _ = load(engine, body["plan_id"])
    assert plan.format == PLAN_FORMAT
    assert plan.digest == body["digest"]  # what was reviewed is what is applied
    assert body_digest(body) == body["digest"]  # digested as format 1 computed it
    for action in plan.actions:
        _spec(action).params.of(action)  # raises if the executor could not read it
        assert "provides" not in action.params
    assert _ordering_of_refs(plan) == {a.id: a.depends_on for a in plan.actions}


def test_a_renames_route_move_keeps_its_order_as_refs() -> None:
    """Format 1 kept a route move's order in `taker` and `after:<id>` parameters."""
    body = next(b for b in BODIES if any(a["op"] == "release_domain" for a in b["actions"]))
    plan = plan_of_body(body)
    (release,) = [a for a in plan.actions if a.op == "release_domain"]
    upserts = [a for a in plan.actions if release.id in a.depends_on]
    assert upserts and all(a.op == "upsert_domain" for a in upserts)
    assert ReleaseDomain.of(release).domain_id == body_release_domain_id(body)
    for upsert in upserts:
        assert set(release.provides) <= set(upsert.after)
        assert not any(name.startswith("after:") for name in upsert.params)
        UpsertDomain.of(upsert)


def body_release_domain_id(body: dict[str, Any]) -> str:
    (release,) = [a for a in body["actions"] if a["op"] == "release_domain"]
    return str(release["params"]["domain_id"])


def test_a_plan_file_written_before_still_names_its_stored_plan(
    engine: Engine, tmp_path: Path
) -> None:
    body = BODIES[0]
    _store_as_written(engine, body)
    written = tmp_path / "plan.json"
    written.write_text(json.dumps(body), encoding="utf-8")
    assert stored_plan_of_file(engine, written) == body["plan_id"]

    edited = json.loads(json.dumps(body))
    deploy = next(a for a in edited["actions"] if a["op"] == "deploy")
    deploy["params"]["config_hash"] = "0" * 32
    written.write_text(json.dumps(edited), encoding="utf-8")
    with pytest.raises(PlanFileRejected, match="edited after"):
        stored_plan_of_file(engine, written)


def test_a_new_plans_digest_is_its_stored_bodys_and_holds_no_apply_time_ids() -> None:
    lane = ProductLane(
        lane="product:shop/testing",
        product="shop",
        lane_name="testing",
        generation=1,
        target="application",
        project="shop",
        environment="staging",
        service_name="shop-testing",
        image="img:1",
        compose_file=None,
        env={"A": "1"},
        secrets={},
        domains=(DesiredDomain("shop.example.com", "/", 80, True, None),),
        replicas=2,
        health_checks=(),
        deploy_timeout_seconds=600.0,
        apply_policy=ApplyPolicy.manual,
        protect=False,
        prod=False,
    )
    diff = diff_product_lane(lane.lane, lane, ObservedProductLane(), SecretFacts("s", {}), now=0.0)
    plan = build_plan(
        diffs=[diff],
        kinds={"product": KindFacts(PRODUCT_OPS, BlastRadiusGuard(), 0)},
        fingerprints={},
        generations={lane.lane: 1},
        desired_revision="r",
        created_by="t",
        now=utcnow(),
        ttl=timedelta(minutes=5),
    )
    body = plan.model_dump(mode="json")
    assert body["format"] == PLAN_FORMAT
    assert body_digest(body) == plan.digest
    assert all("known" not in a for a in body["actions"])
    assert plan_of_body(body) == plan
    # A new lane waits for what the plan makes: environment after project, and so on.
    assert _ordering_of_refs(plan) == {a.id: a.depends_on for a in plan.actions}
    by_op = {a.op: a for a in plan.actions}
    assert by_op["create_environment"].depends_on == [by_op["create_project"].id]
    assert by_op["create_application"].depends_on == [by_op["create_environment"].id]
    assert by_op["deploy"].depends_on == [by_op["create_application"].id]
