"""Plans that neither leak, hijack nor lie (issue 11, items 1-3 and 6), against the emulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from sqlalchemy.engine import Engine

from desired_state.secrets import SecretRef
from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType, Plan
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.reasons import ROUTE_CONFLICT
from reconciler.kinds.product.rule_input import SecretFacts
from reconciler.records import plan_store
from reconciler.runtime import Runtime
from reconciler.secret_values import fingerprint
from tests.reconciler.conftest import SECRETS, dokploy, owned_service_of, store_fleet
from tests.support.fleets import NEW_PRODUCT, converge, example_fleet, spec_of, store_unchecked
from tests.support.lane_strategies import observed_as_desired, product_lanes


def blockers(plan: Plan, lane: str) -> list[tuple[str, str]]:
    return [(b.type, b.message) for b in plan.blockers if b.lane == lane]


# -- 1. a key with a secret source never shows a value --------------------------------------


@settings(max_examples=50, deadline=None)
@given(product_lanes())
def test_a_key_in_env_and_secrets_never_shows_a_before_value(
    drawn: tuple[ProductLane, dict[str, str]],
) -> None:
    """Whatever was stored or written before: the key's value read from Dokploy, even
    when Setpoint once wrote it as plain env, is never shown."""
    lane, secrets = drawn
    secret_value = "the-db-user-secret-value-42"
    overlapping = replace(
        lane,
        env={**lane.env, "DB_USER": "override"},
        secrets={
            **lane.secrets,
            "DB_USER": SecretRef.model_validate({"fromEnv": "SETPOINT_SECRET_U"}),
        },
    )
    observed = observed_as_desired(lane, secrets)
    assert observed.service is not None and observed.owned is not None
    observed.service = replace(observed.service, env_text=f"DB_USER={secret_value}\n")
    # As the leaking plans recorded it: Setpoint once wrote DB_USER as plain env.
    facts_written = {**observed.owned.facts, "plain_env_keys": ["DB_USER"]}
    observed.owned = replace(observed.owned, facts=facts_written)
    facts = SecretFacts(salt="s", desired={"DB_USER": fingerprint("s", "rotated")})
    diff = diff_product_lane(lane.lane, overlapping, observed, facts)
    shown = repr([(a.changes, a.reason, a.params) for a in diff.actions])
    assert secret_value not in shown
    env_changes = [c for a in diff.actions for c in a.changes if c.field == "env.DB_USER"]
    assert env_changes and all(not isinstance(c.before, str) or c.secret for c in env_changes)


async def test_an_overlap_stored_before_the_rule_blocks_its_lane_and_leaks_nothing(
    runtime: Runtime, engine: Engine
) -> None:
    await converge(runtime)
    spec = spec_of(NEW_PRODUCT.format(name="orca", host="orca.example.com"))
    spec["env"] = {"DB_USER": "orca"}
    spec["secrets"] = {"DB_USER": {"fromEnv": "SETPOINT_SECRET_LEDGER_DB_PASSWORD"}}
    spec["lanes"][0]["env"] = {"DB_USER": "override"}
    store_unchecked(engine, "orca", spec)
    plan = await compute_plan(runtime)
    [(kind, message)] = blockers(plan, "product:orca/live")
    assert kind == BlockerType.invalid_desired_state
    assert "DB_USER set both in env and in secrets" in message
    assert plan.lane_actions("product:orca/live") == []
    stored, _ = plan_store.load(engine, plan.plan_id)
    for text in (plan.model_dump_json(), stored.model_dump_json()):
        assert SECRETS["SETPOINT_SECRET_LEDGER_DB_PASSWORD"] not in text


# -- 2. no lane takes a route another lane or service has -----------------------------------


async def test_a_lane_taking_a_host_an_unowned_service_routes_is_blocked(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    client = dokploy(runtime)
    made = await client.project_create("hand-made")
    environment_id = made.environment.environment_id
    app = await client.application_create("by-hand", environment_id)
    await client.domain_create(host="hand.example.com", port=80, application_id=app.application_id)
    fleet = example_fleet(tmp_path)
    (fleet / "taker.yaml").write_text(NEW_PRODUCT.format(name="taker", host="hand.example.com"))
    store_fleet(engine, fleet)
    plan = await compute_plan(runtime)
    [(kind, message)] = blockers(plan, "product:taker/live")
    assert kind == ROUTE_CONFLICT.code
    assert "hand.example.com/ is taken by application 'by-hand'" in message
    assert "not owned by Setpoint" in message
    assert not [a for a in plan.actions if a.op == Op.upsert_domain]
    result = await apply_plan(runtime, plan.plan_id)
    assert not result.ok
    assert [d.host for d in await client.domain_by_application_id(app.application_id)] == [
        "hand.example.com"
    ]


async def test_a_lane_taking_a_host_another_lane_still_routes_is_blocked(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    """A rename: the old product left desired state, its service still routes the host."""
    await converge(runtime)
    host = "docs.example.com"
    fleet = example_fleet(
        tmp_path, edit=("docs-site.yaml", f"host: {host}", "host: old.example.com")
    )
    (fleet / "docs-next.yaml").write_text(NEW_PRODUCT.format(name="docs-next", host=host))
    store_fleet(engine, fleet)
    plan = await compute_plan(runtime)
    [(kind, message)] = blockers(plan, "product:docs-next/live")
    assert kind == ROUTE_CONFLICT.code
    owner = owned_service_of(engine, "product:docs-site/prod")
    assert owner is not None
    assert f"{host}/ is taken by application 'docs-site-prod' ({owner.object_id}, " in message
    assert "owned by lane product:docs-site/prod" in message
    upserts = [a for a in plan.actions if a.op == Op.upsert_domain]
    assert [a.lane for a in upserts] == ["product:docs-site/prod"]  # its own new host only


async def test_two_stored_lanes_declaring_one_new_host_are_both_blocked(
    runtime: Runtime, engine: Engine
) -> None:
    for name in ("first", "second"):
        store_unchecked(engine, name, spec_of(NEW_PRODUCT.format(name=name, host="x.example.com")))
    plan = await compute_plan(runtime)
    for lane, rival in (("first", "second"), ("second", "first")):
        [(kind, message)] = blockers(plan, f"product:{lane}/live")
        assert kind == ROUTE_CONFLICT.code
        assert f"x.example.com/ is taken by lane product:{rival}/live (desired state)" in message
    assert not [a for a in plan.actions if a.op == Op.upsert_domain and "x.example" in a.target]


# -- 3. a replicas change is deployed ------------------------------------------------------


async def test_a_replicas_change_plans_a_deploy_and_runs_after_it(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, "product:shop/prod")
    assert owned is not None
    app_id = owned.object_id
    assert emulator.state.live[app_id].replicas == 2
    store_fleet(engine, example_fleet(tmp_path, edit=("shop.yaml", "replicas: 2", "replicas: 3")))
    plan = await compute_plan(runtime)
    assert [a.op for a in plan.lane_actions("product:shop/prod")] == [Op.set_replicas, Op.deploy]
    deploy = plan.lane_actions("product:shop/prod")[1]
    assert deploy.reason == "deploy: replicas changed"
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert emulator.state.live[app_id].replicas == 3
    assert emulator.summary()["live"][app_id]["replicas"] == 3
    again = await compute_plan(runtime)
    assert again.actions == [] and again.blockers == []


async def test_saved_replicas_do_not_run_until_a_deploy(
    runtime: Runtime, engine: Engine, emulator: Emulator
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, "product:shop/prod")
    assert owned is not None
    await dokploy(runtime).application_update(owned.object_id, replicas=5)
    emulator.state.tick()
    assert emulator.state.applications[owned.object_id]["replicas"] == 5  # saved
    assert emulator.state.live[owned.object_id].replicas == 2  # still running
    plan = await compute_plan(runtime)  # desired says 2: set it back, and deploy
    assert [a.op for a in plan.lane_actions("product:shop/prod")] == [Op.set_replicas, Op.deploy]


# -- 6. a health check with nothing to check is never dropped -----------------------------


async def test_a_stored_health_check_with_no_url_and_no_domain_blocks_its_lane(
    runtime: Runtime, engine: Engine
) -> None:
    spec = spec_of(NEW_PRODUCT.format(name="quiet", host="quiet.example.com"))
    spec["lanes"][0]["domains"] = []
    spec["lanes"][0]["healthChecks"] = [{"path": "/ready"}]
    store_unchecked(engine, "quiet", spec)
    plan = await compute_plan(runtime)
    [(kind, message)] = blockers(plan, "product:quiet/live")
    assert kind == BlockerType.invalid_desired_state
    assert "1 health check(s) have no `url` and the lane has no domain to check" in message
    assert plan.lane_actions("product:quiet/live") == []


# -- 4. two stored lanes mapping to one Dokploy service are blocked, not confused ----------


async def test_two_stored_lanes_with_one_service_name_are_blocked(
    runtime: Runtime, engine: Engine
) -> None:
    web = spec_of(NEW_PRODUCT.format(name="orca-web", host="a.example.com"))
    web["dokploy"]["project"] = "orca"
    store_unchecked(engine, "orca-web", web)
    orca = spec_of(NEW_PRODUCT.format(name="orca", host="b.example.com"))
    orca["lanes"][0]["name"] = "web-live"
    store_unchecked(engine, "orca", orca)
    plan = await compute_plan(runtime)
    for lane, rival in (("orca-web/live", "orca/web-live"), ("orca/web-live", "orca-web/live")):
        [(kind, message)] = blockers(plan, f"product:{lane}")
        assert kind == BlockerType.invalid_desired_state
        assert f"lane product:{rival} maps to the same Dokploy service name 'orca-web-live'" in (
            message
        )
        assert plan.lane_actions(f"product:{lane}") == []
