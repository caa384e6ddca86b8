"""Health that keeps watching (issue 27): a converged lane is checked again every health
interval by scheduled passes, one request per check; a lane whose check starts failing turns
Degraded within one interval, with no change to desired state, and recovers on its own."""

from __future__ import annotations

import dataclasses

from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.loop.passes import PassReport, reconcile_pass
from reconciler.records import lane_health
from reconciler.records.audit import list_records
from reconciler.records.database import session_scope
from reconciler.records.plan_store import summaries
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, ShiftedClock
from tests.reconciler.conftest import Workload

LANE = "product:shop/testing"
INTERVAL = 300.0  # SETPOINT_HEALTH_WATCH_INTERVAL_SECONDS' default


def _ready(runtime: Runtime) -> dict[str, str]:
    row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
    return next(c for c in row.conditions if c["type"] == "Ready")


def _checks(workload: Workload) -> int:
    return sum(1 for r in workload.requests if r.endswith("/healthz") and "shop" in r)


def _outcome(report: PassReport) -> str:
    return next(r.outcome for r in report.lanes if r.lane == LANE)


async def test_a_healthy_lane_that_starts_failing_turns_degraded_within_one_interval(
    runtime: Runtime, workload: Workload
) -> None:
    clock = ShiftedClock()
    runtime = dataclasses.replace(runtime, clock=clock)
    assert (await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)).ok
    first = await reconcile_pass(runtime)  # the watch's first verdict
    assert _outcome(first) == "converged" and _ready(runtime)["status"] == "True"
    plans_before = len(summaries(runtime.database, lane=LANE))
    checks = _checks(workload)

    workload.status = 503
    early = await reconcile_pass(runtime)  # within the interval: not checked again
    assert _outcome(early) == "converged" and _checks(workload) == checks

    clock.offset += INTERVAL
    late = await reconcile_pass(runtime)
    assert _checks(workload) == checks + 1  # one request per check
    assert _outcome(late) == "degraded"
    ready = _ready(runtime)
    assert ready["status"] == "False" and ready["reason"] == "Degraded"
    assert "/healthz" in ready["message"] and "status 503" in ready["message"]
    assert len(summaries(runtime.database, lane=LANE)) == plans_before  # nothing to apply, no plan
    (verdict,) = lane_health.latest(runtime.database, [LANE]).values()
    assert not verdict.ok and verdict.failures == 1 and verdict.status_code == 503

    still = await reconcile_pass(runtime)  # not due: still Degraded, not checked
    assert _outcome(still) == "degraded" and _checks(workload) == checks + 1

    workload.status = 200
    clock.offset += INTERVAL
    assert _outcome(await reconcile_pass(runtime)) == "converged"
    assert _ready(runtime)["status"] == "True"
    with session_scope(runtime.database) as session:
        events = [r.event for r in list_records(session, lane=LANE, limit=1000)]
    assert events.count("lane_degraded") == 1 and events.count("lane_recovered") == 1


async def test_the_interval_is_the_installations_setting(
    runtime: Runtime, workload: Workload
) -> None:
    clock = ShiftedClock()
    runtime = dataclasses.replace(
        runtime,
        clock=clock,
        settings=runtime.settings.model_copy(update={"health_watch_interval_seconds": 3600.0}),
    )
    assert (await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)).ok
    await reconcile_pass(runtime)
    workload.status = 500
    clock.offset += INTERVAL  # the default would be due; the installation's hour is not
    assert _outcome(await reconcile_pass(runtime)) == "converged"
    clock.offset += 3600.0
    assert _outcome(await reconcile_pass(runtime)) == "degraded"


def test_a_lane_names_its_own_interval_and_only_verified_deploys_are_watched() -> None:
    from dataclasses import replace

    from desired_state.loader import load_path
    from reconciler.kinds.product.lanes import lanes_of_product
    from reconciler.kinds.product.observed import ServiceFacts
    from reconciler.kinds.product.watch import health_watch
    from tests.conftest import EXAMPLES

    shop = next(d.document for d in load_path(EXAMPLES) if d.document.name == "shop")
    lane = next(x for x in lanes_of_product(shop, 1) if x.lane == LANE)
    verified = ServiceFacts(deployed_config_hash="h1", health={"config_hash": "h1", "ok": True})
    watch = health_watch(lane, verified, INTERVAL)
    assert watch is not None and watch.interval == INTERVAL and watch.basis == "h1"
    own = health_watch(replace(lane, health_interval_seconds=60.0), verified, INTERVAL)
    assert own is not None and own.interval == 60.0
    failed = ServiceFacts(deployed_config_hash="h1", health={"config_hash": "h1", "ok": False})
    assert health_watch(lane, failed, INTERVAL) is None  # its plan checks it, with backoff
    older = ServiceFacts(deployed_config_hash="h2", health={"config_hash": "h1", "ok": True})
    assert health_watch(lane, older, INTERVAL) is None
    assert health_watch(replace(lane, health_checks=()), verified, INTERVAL) is None


def test_a_new_configuration_starts_its_verdict_afresh(runtime: Runtime) -> None:
    from reconciler.records.lane_health import Checked, record_checks
    from reconciler.runtime import utcnow

    now = utcnow()
    failed = Checked(LANE, "config-1", False, "https://t/healthz", 503, "status 503")
    assert [t.became for t in record_checks(runtime.database, [failed], now)] == ["degraded"]
    passed = Checked(LANE, "config-2", True, "https://t/healthz", 200, "ok")
    assert record_checks(runtime.database, [passed], now) == []  # another deploy, not a recovery
    (row,) = lane_health.latest(runtime.database, [LANE]).values()
    assert (row.basis, row.ok, row.failures, row.failing_since) == ("config-2", True, 0, None)
