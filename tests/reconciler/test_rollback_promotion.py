"""Issue 27: rollback as a plan, `onFailedHealth: rollback`, and promotion of what testing
verified, against the Dokploy emulator (what runs is read from the emulator's live state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.known_good import rollback
from reconciler.core.planning import compute_plan
from reconciler.core.promotion import promote
from reconciler.errors import PromotionRefused, RollbackRefused
from reconciler.kinds.product.ops import Op
from reconciler.loop.passes import PassReport, reconcile_pass
from reconciler.records import known_good, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime
from tests.loop.support import fast_engine
from tests.reconciler.conftest import Workload, store_fleet
from tests.support.notes_fleet import notes_fleet
from tests.support.rollback import ImageHealth, records, running

TESTING = "product:notes/testing"
PROD = "product:notes/prod"
GOOD = "ghcr.io/acme/notes@sha256:" + "a" * 64
BAD = "ghcr.io/acme/notes@sha256:" + "b" * 64
PROD_START = "ghcr.io/acme/notes@sha256:" + "0" * 64


def write_fleet(
    runtime: Runtime,
    tmp_path: Path,
    *,
    testing: str = GOOD,
    prod: str = PROD_START,
    apply: str = "manual",
    on_failed: str = "none",
    gate: str | None = None,
) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(
        notes_fleet(
            image=testing, prod_image=prod, apply=apply, on_failed_health=on_failed, gate=gate
        )
    )
    store_fleet(runtime.database, path, prune=True)


@pytest.fixture
def workload(emulator: Emulator) -> Workload:
    """Answers 503 while a service runs BAD."""
    health = ImageHealth(emulator)
    health.bad.add(BAD)
    return health


async def converge(runtime: Runtime, lane: str) -> None:
    plan = await compute_plan(runtime, [lane])
    if plan.actions:
        result = await apply_plan(runtime, plan.plan_id)
        assert result.status == "applied", result
    assert not (await compute_plan(runtime, [lane])).actions


def ready(runtime: Runtime, lane: str) -> bool:
    row = next(r for r in all_statuses(runtime.database) if r.lane == lane)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in row.conditions)


async def test_rollback_of_a_healthy_lane_plans_the_previous_generation(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    other = "ghcr.io/acme/notes@sha256:" + "c" * 64
    write_fleet(runtime, tmp_path)
    await converge(runtime, TESTING)
    with pytest.raises(RollbackRefused, match="no earlier known-good state"):
        await rollback(runtime, TESTING, reason="nothing to go back to")
    write_fleet(runtime, tmp_path, testing=other)
    await converge(runtime, TESTING)
    assert running(emulator, "notes-testing") == other
    states = known_good.history(runtime.database, TESTING)
    assert [(s.generation, s.running) for s in states] == [(2, other), (1, GOOD)]

    rolled = await rollback(runtime, "notes/testing", reason="the new build logs too much")
    assert (rolled.generation, rolled.restored.generation) == (3, 1)
    assert running(emulator, "notes-testing") == other  # a rollback changes nothing outside
    plan = await compute_plan(runtime, [TESTING])
    image = next(a for a in plan.actions if a.op == Op.set_image)
    assert image.params["image"] == GOOD
    assert {a.op for a in plan.actions} == {Op.set_image, Op.deploy}
    assert (await apply_plan(runtime, plan.plan_id)).status == "applied"
    assert running(emulator, "notes-testing") == GOOD
    assert not (await compute_plan(runtime, [TESTING])).actions
    [audited] = records(runtime, AuditEvent.lane_rolled_back)
    assert audited["reason"] == "the new build logs too much"
    assert (audited["from_generation"], audited["to_generation"]) == (2, 1)
    assert audited["running"] == GOOD and audited["actor"] == "test-operator"

    with pytest.raises(RollbackRefused, match="never known good at generation 7"):
        await rollback(runtime, TESTING, reason="no such", to_generation=7)


async def test_rollback_keeps_the_lane_policy_of_today(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(runtime, tmp_path, apply="auto-safe")
    await converge(runtime, TESTING)
    write_fleet(runtime, tmp_path, testing=BAD.replace("b", "d"), apply="manual")
    await converge(runtime, TESTING)
    await rollback(runtime, TESTING, reason="back")
    report = await reconcile_pass(runtime)
    outcome = next(r for r in report.lanes if r.lane == TESTING)
    assert outcome.outcome == "awaiting_operator"  # manual now: the old auto-safe stays old


async def loop_pass(runtime: Runtime) -> PassReport:
    """A scheduled pass through the loop engine's workers (`setpoint run --once`)."""
    return await fast_engine(runtime).run_once()


@pytest.mark.parametrize("reconcile_pass", [reconcile_pass, loop_pass], ids=["pass", "loop"])
async def test_on_failed_health_rollback_runs_the_previous_digest_after_the_next_pass(
    runtime: Runtime,
    emulator: Emulator,
    tmp_path: Path,
    reconcile_pass: Callable[[Runtime], Awaitable[PassReport]],
) -> None:
    runtime = replace(
        runtime,
        actor="scheduler:test",
        settings=runtime.settings.model_copy(update={"health_backoff_seconds": 0.001}),
    )
    write_fleet(runtime, tmp_path, apply="auto-safe", on_failed="rollback")
    first = await reconcile_pass(runtime)
    assert {r.lane: r.outcome for r in first.lanes}[TESTING] == "applied"
    await reconcile_pass(runtime)  # converged: its state is remembered
    assert known_good.at_generation(runtime.database, TESTING, 1) is not None

    write_fleet(runtime, tmp_path, testing=BAD, apply="auto-safe", on_failed="rollback")
    failed = await reconcile_pass(runtime)
    assert {r.lane: r.outcome for r in failed.lanes}[TESTING] == "waiting"
    assert running(emulator, "notes-testing") == BAD
    assert known_good.at_generation(runtime.database, TESTING, 2) is None

    # The pass that notices the failed check writes the rollback, plans it and applies it.
    noticed = await reconcile_pass(runtime)
    result = next(r for r in noticed.lanes if r.lane == TESTING)
    assert result.outcome == "rolled_back", result
    assert "brings back what ran at generation 1" in result.detail
    assert "2 action(s) applied" in result.detail and result.plan_id
    assert running(emulator, "notes-testing") == GOOD
    [audited] = records(runtime, AuditEvent.lane_rolled_back)
    assert audited["actor"] == "scheduler:test"
    assert audited["failed_verdict"]["ok"] is False
    assert "503" in audited["failed_verdict"]["reason"]
    assert audited["to_generation"] == 1

    quiet = await reconcile_pass(runtime)
    assert {r.lane: r.outcome for r in quiet.lanes}[TESTING] == "converged"
    assert ready(runtime, TESTING)
    assert len(records(runtime, AuditEvent.lane_rolled_back)) == 1  # once, not every pass


async def test_a_manual_lane_rolled_back_on_failed_health_waits_for_an_operator(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    runtime = replace(
        runtime,
        actor="scheduler:test",
        settings=runtime.settings.model_copy(update={"health_backoff_seconds": 0.001}),
    )
    write_fleet(runtime, tmp_path, on_failed="rollback")
    await converge(runtime, TESTING)
    write_fleet(runtime, tmp_path, testing=BAD, on_failed="rollback")
    plan = await compute_plan(runtime, [TESTING])
    assert (await apply_plan(runtime, plan.plan_id)).status == "waiting"  # its check fails

    noticed = await reconcile_pass(runtime)
    result = next(r for r in noticed.lanes if r.lane == TESTING)
    assert result.outcome == "awaiting_operator", result
    assert "brings back what ran at generation 1" in result.detail
    assert running(emulator, "notes-testing") == BAD  # nothing applied without an operator
    waiting, _ = plan_store.load(runtime.database, result.plan_id)
    image = next(a for a in waiting.actions if a.op == Op.set_image)
    assert image.params["image"] == GOOD
    applied = await apply_plan(runtime, result.plan_id)
    assert applied.status == "applied", applied.refusal
    assert running(emulator, "notes-testing") == GOOD
    assert len(records(runtime, AuditEvent.lane_rolled_back)) == 1


async def test_a_rollback_that_fails_too_is_not_rolled_back_further(
    runtime: Runtime, emulator: Emulator, workload: ImageHealth, tmp_path: Path
) -> None:
    oldest = "ghcr.io/acme/notes@sha256:" + "9" * 64
    runtime = replace(
        runtime,
        actor="scheduler:test",
        settings=runtime.settings.model_copy(update={"health_backoff_seconds": 0.001}),
    )
    for image in (oldest, GOOD):
        write_fleet(runtime, tmp_path, testing=image, apply="auto-safe", on_failed="rollback")
        await reconcile_pass(runtime)
        await reconcile_pass(runtime)
    write_fleet(runtime, tmp_path, testing=BAD, apply="auto-safe", on_failed="rollback")
    workload.bad.add(GOOD)  # what was good is broken now too (a dependency moved)
    results = [
        next(r for r in (await reconcile_pass(runtime)).lanes if r.lane == TESTING)
        for _ in range(5)
    ]
    outcomes = [r.outcome for r in results]
    # The rollback is applied in the pass that writes it, and its deploy fails its check too.
    assert outcomes[:2] == ["waiting", "waiting"], outcomes
    assert "brings back what ran at generation 2" in results[1].detail
    assert "rolled_back" not in outcomes
    assert running(emulator, "notes-testing") == GOOD  # never walked back to the oldest
    assert len(records(runtime, AuditEvent.lane_rolled_back)) == 1


async def test_without_the_policy_a_failed_deploy_is_left_for_the_operator(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    runtime = replace(
        runtime, settings=runtime.settings.model_copy(update={"health_backoff_seconds": 0.001})
    )
    write_fleet(runtime, tmp_path, apply="auto-safe")
    await reconcile_pass(runtime)
    await reconcile_pass(runtime)
    write_fleet(runtime, tmp_path, testing=BAD, apply="auto-safe")
    await reconcile_pass(runtime)
    await reconcile_pass(runtime)
    assert records(runtime, AuditEvent.lane_rolled_back) == []
    assert running(emulator, "notes-testing") == BAD


async def test_promotion_is_refused_until_testing_is_ready_on_a_verified_digest(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    tag = "ghcr.io/acme/notes:main"
    write_fleet(runtime, tmp_path, testing=tag, gate='{command: ["true"]}')
    with pytest.raises(PromotionRefused, match="not Ready"):
        await promote(runtime, "notes", "testing", "prod", reason="too early")
    await converge(runtime, TESTING)
    with pytest.raises(PromotionRefused, match="not an image digest"):
        await promote(runtime, "notes", "testing", "prod", reason="a tag")

    write_fleet(runtime, tmp_path, testing=GOOD, gate='{command: ["true"]}')
    await converge(runtime, PROD)
    await converge(runtime, TESTING)
    promoted = await promote(runtime, "notes", "testing", "prod", reason="release 1.4")
    assert (promoted.image, promoted.gate.ok, promoted.gate.gate) == (GOOD, True, "command")
    assert running(emulator, "notes-prod") == PROD_START  # a promotion is only a plan
    plan = await compute_plan(runtime, [PROD])
    assert next(a for a in plan.actions if a.op == Op.set_image).params["image"] == GOOD
    assert (await apply_plan(runtime, plan.plan_id)).status == "applied"
    assert running(emulator, "notes-prod") == GOOD

    [audited] = records(runtime, AuditEvent.lane_promoted)
    assert audited["lane"] == PROD and audited["source"] == TESTING
    assert audited["image"] == GOOD and audited["reason"] == "release 1.4"
    assert audited["gate"] == {"ok": True, "gate": "command", "detail": "true: exit code 0"}
    assert audited["source_verdict"]["checks"] == ["https://testing.notes.example.com/healthz"]
    refusals = records(runtime, AuditEvent.promotion_refused)
    assert [r["refused"] for r in refusals] == [
        f"{TESTING} is not Ready (6 action(s) pending); nothing was promoted",
        f"{TESTING} runs {tag}, not an image digest (name@sha256:...)",
    ]


async def test_a_gate_that_says_no_refuses_the_promotion_and_is_audited(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(runtime, tmp_path, gate='{command: ["false"]}')
    await converge(runtime, TESTING)
    with pytest.raises(PromotionRefused, match="gate said no: false: exit code 1"):
        await promote(runtime, "notes", "testing", "prod", reason="backup missing")
    [refused] = records(runtime, AuditEvent.promotion_refused)
    assert refused["gate"] == {"ok": False, "gate": "command", "detail": "false: exit code 1"}
    assert refused["image"] == GOOD
    assert records(runtime, AuditEvent.lane_promoted) == []


async def test_an_http_gate_is_checked_through_the_health_probe(
    runtime: Runtime, emulator: Emulator, workload: ImageHealth, tmp_path: Path
) -> None:
    gate = "{url: 'https://testing.notes.example.com/backup-fresh', expectStatus: 200}"
    write_fleet(runtime, tmp_path, gate=gate)
    await converge(runtime, TESTING)
    workload.bad.add(GOOD)  # the gate's endpoint answers 503 now
    with pytest.raises(PromotionRefused, match="gate said no: GET https://testing"):
        await promote(runtime, "notes", "testing", "prod", reason="no fresh backup")
    workload.bad.discard(GOOD)
    promoted = await promote(runtime, "notes", "testing", "prod", reason="backup is fresh")
    assert promoted.gate.ok and promoted.gate.gate == "http"
    assert "backup-fresh: 200" in promoted.gate.detail
    [refused] = records(runtime, AuditEvent.promotion_refused)
    assert refused["gate"]["ok"] is False and "503" in refused["gate"]["detail"]


async def test_a_state_whose_route_another_product_took_since_is_refused(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(runtime, tmp_path)
    await converge(runtime, TESTING)
    moved = tmp_path / "notes.yaml"
    moved.write_text(moved.read_text().replace("testing.notes.example.com", "t2.notes.example.com"))
    store_fleet(runtime.database, moved)
    plan = await compute_plan(runtime, [TESTING])  # the old host's domain is deleted
    assert (await apply_plan(runtime, plan.plan_id, allow_destroy=1)).status == "applied"
    await converge(runtime, TESTING)
    other = tmp_path / "wiki.yaml"
    other.write_text(
        notes_fleet(image=GOOD, prod_image=PROD_START, apply="manual", on_failed_health="none")
        .replace("name: notes}", "name: wiki}")
        .replace("project: notes", "project: wiki")
        .replace("host: notes.example.com", "host: wiki.example.com")
    )
    store_fleet(runtime.database, other)  # wiki/testing now routes testing.notes.example.com
    with pytest.raises(RollbackRefused, match="clashes with stored desired state"):
        await rollback(runtime, TESTING, reason="back to the old host")
    assert records(runtime, AuditEvent.lane_rolled_back) == []
