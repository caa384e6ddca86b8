"""DESIGN.md invariants, each proven against the Dokploy emulator."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType, Effect, Trigger
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.records import audit, leases
from reconciler.records.database import session_scope
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, utcnow
from tests.reconciler.conftest import (
    ALL_SECRET_VALUES,
    SECRETS,
    STORED_SECRETS,
    dokploy,
    owned_service_of,
    store_fleet,
)
from tests.support.fleets import converge, example_fleet
from tests.support.secret_scan import assert_no_secrets


def events(engine: Engine, plan_id: str | None = None) -> list[tuple[str, str | None]]:
    with session_scope(engine) as session:
        records = audit.list_records(session, plan_id=plan_id, limit=10_000)
    return [(r.event, r.action_id) for r in sorted(records, key=lambda r: r.seq)]


# Invariant 3 -------------------------------------------------------------------------------


async def test_empty_project_list_for_an_owned_fleet_blocks_and_plans_nothing(
    runtime: Runtime, emulator: Emulator
) -> None:
    await converge(runtime)
    emulator.faults.empty_list("project.all")
    plan = await compute_plan(runtime)
    assert plan.actions == []
    assert [b.type for b in plan.blockers] == [BlockerType.observation_incomplete]
    assert "refusing to read that as 'nothing exists'" in plan.blockers[0].message
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "refused"
    assert result.refusal is not None
    assert result.refusal.type == BlockerType.observation_incomplete


async def test_a_failed_detail_read_blocks_only_by_failing_closed(
    runtime: Runtime, emulator: Emulator
) -> None:
    await converge(runtime)
    emulator.faults.error_rate("application.one", 1.0, status=500)
    plan = await compute_plan(runtime)
    assert plan.actions == []
    assert {b.type for b in plan.blockers} == {BlockerType.observation_incomplete}


# Invariant 6 -------------------------------------------------------------------------------


async def test_plan_applied_after_someone_changed_the_service_is_refused_as_stale(
    runtime: Runtime, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    fleet = example_fleet(tmp_path)
    shop = fleet / "shop.yaml"
    shop.write_text(shop.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    store_fleet(engine, fleet)
    plan = await compute_plan(runtime)
    assert plan.actions
    # Someone edits the service by hand between plan and apply.
    target = next(
        a
        for p in await dokploy(runtime).project_all()
        for e in p.environments
        for a in e.applications
        if a.name == "shop-testing"
    )
    await dokploy(runtime).application_save_docker_provider(
        target.application_id, docker_image="nginx:hand-edit"
    )
    before = emulator.summary()
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "refused" and result.refusal is not None
    assert result.refusal.type == BlockerType.stale_plan
    assert "dokploy:service/shop/testing/shop-testing" in result.refusal.message
    assert emulator.summary() == before
    assert ("apply_refused", None) in events(engine, plan.plan_id)


async def test_plan_is_stale_once_desired_state_moves(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    plan = await compute_plan(runtime)
    fleet = example_fleet(tmp_path, without=("docs-site.yaml",))
    store_fleet(engine, fleet, prune=True)
    result = await apply_plan(runtime, plan.plan_id)
    assert result.refusal is not None and result.refusal.type == BlockerType.stale_plan
    assert "desired state changed" in result.refusal.message


# Invariant 5 -------------------------------------------------------------------------------


async def test_deleting_more_than_the_guard_allows_is_blocked_until_allow_destroy(
    runtime: Runtime, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    store_fleet(
        engine,
        example_fleet(
            tmp_path,
            without=(
                "docs-site.yaml",
                "ledger.yaml",
            ),
        ),
        prune=True,
    )
    plan = await compute_plan(runtime)
    deletes = [a for a in plan.actions if a.op == Op.delete_service]
    # ledger/prod is protected: never deleted, reported instead.
    assert {a.lane for a in deletes} == {
        "product:docs-site/testing",
        "product:docs-site/prod",
        "product:ledger/testing",
    }
    assert {b.type for b in plan.blockers} == {
        BlockerType.blast_radius_exceeded,
        BlockerType.protected_lane,
    }
    refused = await apply_plan(runtime, plan.plan_id, allow_destroy=3)
    assert refused.refusal is not None and refused.refusal.type == BlockerType.protected_lane


async def test_allow_destroy_lifts_the_blast_radius_guard_by_number(
    runtime: Runtime, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    store_fleet(engine, example_fleet(tmp_path, without=("docs-site.yaml",)), prune=True)
    runtime.settings.max_deletions = 1
    plan = await compute_plan(runtime)
    # Both services, and the `testing` environment Setpoint created for one of them.
    assert plan.deletions == 3
    assert [b.type for b in plan.blockers] == [BlockerType.blast_radius_exceeded]
    # The message names the deletions that count and why the allowance is that number.
    message = plan.blockers[0].message
    for action in (a for a in plan.actions if a.effect is Effect.delete):
        assert f"{action.id} {action.op} {action.lane}" in message
    assert "at most 1" in message and "--allow-destroy 3, which allows its 3 deletion(s)" in message
    too_few = await apply_plan(runtime, plan.plan_id, allow_destroy=2)
    assert too_few.refusal is not None and too_few.refusal.type == BlockerType.blast_radius_exceeded
    assert "docs-site-prod" in emulator.summary()["applications"]
    ok = await apply_plan(runtime, plan.plan_id, allow_destroy=3)
    assert ok.ok, ok
    names = emulator.summary()["applications"]
    assert not any(n.startswith("docs-site") for n in names)
    assert {"shop-prod", "shop-testing"} <= set(names)
    assert not any(row.lane.startswith("docs-site/") for row in all_statuses(engine))
    assert (await compute_plan(runtime)).actions == []


# Invariant 4 -------------------------------------------------------------------------------


async def test_unowned_service_with_a_clashing_name_is_reported_and_left_untouched(
    runtime: Runtime, emulator: Emulator
) -> None:
    created = await dokploy(runtime).project_create("docs")
    environment = await dokploy(runtime).environment_create(created.project.project_id, "testing")
    stranger = await dokploy(runtime).application_create(
        "docs-site-testing", environment.environment_id
    )
    await dokploy(runtime).application_save_docker_provider(
        stranger.application_id, docker_image="nginx:1"
    )
    plan = await compute_plan(runtime)
    blockers = [b for b in plan.blockers if b.type == BlockerType.not_owned]
    assert [b.lane for b in blockers] == ["product:docs-site/testing"]
    assert stranger.application_id in blockers[0].message
    assert not plan.lane_actions("product:docs-site/testing")
    # The plan is blocked as a whole; the other lanes are applied by planning them alone.
    lanes = [lane for lane in plan.lanes if lane != "product:docs-site/testing"]
    scoped = await compute_plan(runtime, lanes)
    assert (await apply_plan(runtime, scoped.plan_id)).ok
    after = await dokploy(runtime).application_one(stranger.application_id)
    assert after.docker_image == "nginx:1" and not after.env and not after.domains


# Invariant 2 -------------------------------------------------------------------------------


async def test_failure_mid_apply_stops_its_lane_and_the_other_lanes_finish(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    plan = await compute_plan(runtime)
    emulator.faults.fail_next("application.saveEnvironment", status=400, count=1)
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "failed"
    failed = [r for r in result.actions if r.result == "failed"]
    assert len(failed) == 1 and failed[0].op == "set_env"
    broken = failed[0].lane
    lanes = result.lanes()
    assert lanes[broken] == "failed"
    assert {lane: r for lane, r in lanes.items() if lane != broken} == {
        lane: "ok" for lane in plan.lanes if lane != broken
    }
    not_run = [r.action_id for r in result.actions if r.result == "not_run"]
    assert not_run and all(r.lane == broken for r in result.actions if r.result == "not_run")
    ran = [r.action_id for r in result.actions if r.result == "ok"]
    trail = events(engine, plan.plan_id)
    for action_id in ran:
        assert trail.index(("action_intent", action_id)) < trail.index(("action_result", action_id))
    assert ("action_intent", failed[0].action_id) in trail
    assert ("action_result", failed[0].action_id) in trail
    for action_id in not_run:
        assert ("action_skipped", action_id) in trail
        assert ("action_intent", action_id) not in trail
    assert trail[-1] == ("apply_finished", None)
    conditions = {
        r.lane: {c["type"]: c["status"] for c in r.conditions} for r in all_statuses(engine)
    }
    assert conditions[broken]["Stalled"] == "True"
    assert all(conditions[lane]["Ready"] == "True" for lane in plan.lanes if lane != broken)
    # The next plan owes the broken lane only.
    again = await compute_plan(runtime)
    assert {a.lane for a in again.actions} == {broken}


async def test_a_failed_deploy_is_a_lane_state_not_a_deploy_owed_every_plan(
    runtime: Runtime, emulator: Emulator
) -> None:
    # More in tests/reconciler/test_deploy_failed.py.
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    emulator.faults.fail_next_deploy()
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "waiting"
    assert [r.op for r in result.actions if r.result == "retry"] == ["deploy"]
    again = await compute_plan(runtime, ["product:docs-site/testing"])
    assert again.actions == []
    assert [b.type for b in again.blockers] == [DEPLOY_FAILED.code]


# Invariant 8 -------------------------------------------------------------------------------


async def test_auth_failure_is_a_gate_with_a_clear_message(
    runtime: Runtime, emulator: Emulator
) -> None:
    emulator.faults.unauthorized()
    plan = await compute_plan(runtime)
    assert plan.actions == []
    assert [b.type for b in plan.blockers] == [BlockerType.credentials_refused]
    assert "Dokploy preflight failed" in plan.blockers[0].message


# Invariant 10 ------------------------------------------------------------------------------


async def test_a_lane_held_by_another_worker_is_not_applied(
    runtime: Runtime, engine: Engine
) -> None:
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert leases.acquire(
        engine, "product:docs-site/testing", "other-replica", ttl_seconds=60, clock=utcnow
    )
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "refused" and result.refusal is not None
    assert "other-replica" in result.refusal.message
    leases.release(engine, "product:docs-site/testing", "other-replica")
    assert (await apply_plan(runtime, plan.plan_id)).ok


# Invariant 1: a scheduled pass applies only what lane policy allows -------------------------


async def test_auto_safe_refuses_manual_lanes_and_risky_actions(runtime: Runtime) -> None:
    everything = await compute_plan(runtime)
    refused = await apply_plan(runtime, everything.plan_id, trigger=Trigger.schedule)
    assert refused.refusal is not None and refused.refusal.type == BlockerType.action_not_allowed
    testing = await compute_plan(runtime, ["product:shop/testing"])
    assert (await apply_plan(runtime, testing.plan_id, trigger=Trigger.schedule)).ok


# Invariant 7 -------------------------------------------------------------------------------


async def test_secrets_appear_in_no_plan_audit_export_or_log(
    runtime: Runtime, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plan = await compute_plan(runtime)
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok
    secret_changes = [c for a in plan.actions for c in a.changes if c.secret]
    assert secret_changes and all(str(c.after).startswith("hmac-sha256:") for c in secret_changes)
    exported = io.StringIO()
    with session_scope(engine) as session:
        audit.export_jsonl(session, exported)
    outputs = [
        plan.model_dump_json(),
        exported.getvalue(),
        caplog.text,
        json.dumps([vars(a) for a in result.actions]),
    ]
    for text in outputs:
        assert_no_secrets(text, ALL_SECRET_VALUES)
    # ... and the values did reach Dokploy, where they belong.
    shop = next(
        a
        for p in await dokploy(runtime).project_all()
        for e in p.environments
        for a in e.applications
        if a.name == "shop-prod"
    )
    env = (await dokploy(runtime).application_one(shop.application_id)).env or ""
    assert (
        STORED_SECRETS["shop-stripe-api-key"] in env
        and SECRETS["SETPOINT_SECRET_SHOP_DATABASE_URL"] in env
    )


async def test_unavailable_secret_blocks_its_lanes_without_naming_a_value(runtime: Runtime) -> None:
    assert runtime.environ is not None
    runtime.environ = {
        k: v for k, v in runtime.environ.items() if k != "SETPOINT_SECRET_SHOP_DATABASE_URL"
    }
    plan = await compute_plan(runtime)
    blocked = {b.lane for b in plan.blockers if b.type == BlockerType.preflight_failed}
    assert blocked == {"product:shop/testing", "product:shop/prod"}
    assert all("SHOP_DATABASE_URL" in b.message for b in plan.blockers)


async def test_an_apply_that_loses_its_lease_stops_before_the_next_side_effect(
    runtime: Runtime, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    started: list[str] = []

    def steal_after_first(message: str) -> None:
        started.append(message)
        if len(started) == 2:  # another replica takes the lane over (our lease expired)
            lease = leases.current(engine, "product:docs-site/testing")
            assert lease is not None
            leases.release(engine, "product:docs-site/testing", lease.holder)
            assert leases.acquire(
                engine, "product:docs-site/testing", "other-replica", ttl_seconds=60, clock=utcnow
            )

    runtime.progress = steal_after_first
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "failed"
    assert [r.result for r in result.actions][:1] == ["ok"]
    assert all(r.result == "not_run" for r in result.actions[1:])
    assert "lease on lane product:docs-site/testing was lost" in result.actions[1].message


async def test_two_concurrent_applies_of_one_plan_run_it_once(
    runtime: Runtime, emulator: Emulator
) -> None:
    import anyio

    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    results = []

    async def attempt() -> None:
        results.append(await apply_plan(runtime, plan.plan_id))

    async with anyio.create_task_group() as group:
        group.start_soon(attempt)
        group.start_soon(attempt)
    assert sorted(r.status for r in results) == ["applied", "refused"]
    assert emulator.summary()["applications"].count("docs-site-testing") == 1


async def test_unprotecting_a_lane_then_removing_it_allows_the_delete(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime)
    fleet = example_fleet(tmp_path)
    ledger = fleet / "ledger.yaml"
    ledger.write_text(ledger.read_text().replace("      protect: true\n", "      protect: false\n"))
    store_fleet(engine, fleet)
    assert (await compute_plan(runtime)).actions == []  # the flag alone changes nothing outside
    ledger.unlink()
    store_fleet(engine, fleet, prune=True)
    plan = await compute_plan(runtime)
    assert {a.lane for a in plan.actions if a.op == Op.delete_service} == {
        "product:ledger/testing",
        "product:ledger/prod",
    }
    assert BlockerType.protected_lane not in {b.type for b in plan.blockers}


async def test_two_plans_racing_for_one_deploy_deploy_the_lane_once(
    runtime: Runtime, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    import anyio

    lane = "product:docs-site/testing"
    emulator.faults.fail_next_deploy()
    assert (await apply_plan(runtime, (await compute_plan(runtime, [lane])).plan_id)).status == (
        "waiting"
    )
    # An hour on, the failed deploy's backoff is over: the deploy is owed again.
    runtime = dataclasses.replace(runtime, clock=lambda: time.time() + 3600.0)
    owned = owned_service_of(engine, lane)
    assert owned is not None
    service_id = owned.object_id

    def deployments() -> int:
        return len(emulator.state.deployments(service_id))

    # Only the deploy is owed, and two plans for it exist: one apply deploys, the other is
    # refused because the deployment it read is no longer the latest.
    colleague = dataclasses.replace(runtime, actor="colleague")  # else the newer supersedes
    first, second = await compute_plan(runtime, [lane]), await compute_plan(colleague, [lane])
    assert [a.op for a in first.actions] == [Op.deploy] == [a.op for a in second.actions]
    before = deployments()
    print(
        "DEPLOYS",
        [(d["deploymentId"], d["status"]) for d in emulator.state.deployments(owned.object_id)],
    )
    assert (await apply_plan(runtime, first.plan_id)).ok
    print(
        "DEPLOYS",
        [(d["deploymentId"], d["status"]) for d in emulator.state.deployments(owned.object_id)],
    )
    late = await apply_plan(runtime, second.plan_id)
    assert late.refusal is not None and late.refusal.type == BlockerType.stale_plan
    assert deployments() == before + 1

    # A change planned twice, applied at the same time by two workers.
    fleet = example_fleet(tmp_path)
    docs = fleet / "docs-site.yaml"
    docs.write_text(docs.read_text().replace("acme/docs:main", "acme/docs:next", 1))
    store_fleet(engine, fleet)
    third, fourth = await compute_plan(runtime, [lane]), await compute_plan(colleague, [lane])
    before = deployments()
    results = []

    async def attempt(plan_id: str) -> None:
        results.append(await apply_plan(runtime, plan_id))

    async with anyio.create_task_group() as group:
        group.start_soon(attempt, third.plan_id)
        group.start_soon(attempt, fourth.plan_id)
    assert sorted(r.status for r in results) == ["applied", "refused"]
    assert deployments() == before + 1
