"""Failure evidence (issue 27): a failed deploy records what Dokploy says about it (the
deployment row and the tail of its build log, redacted), in the action's result, and the
lane and plan show it. Dokploy v0.30 gives no error message (tests/contracts/
dokploy-real-v0.30.2), so the log's last line is the reason shown."""

from __future__ import annotations

import json

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.failure_evidence import evidence_of
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.runtime import Runtime
from tests.reconciler.conftest import ALL_SECRET_VALUES

LANE = "product:shop/testing"


async def test_a_failed_deploy_records_dokploys_row_and_log_tail(
    runtime: Runtime, emulator: Emulator
) -> None:
    emulator.faults.fail_next_deploy()
    plan = await compute_plan(runtime, [LANE])
    result = await apply_plan(runtime, plan.plan_id)

    deploy = next(a for a in result.actions if a.op == Op.deploy)
    assert "Dokploy says: ❌ Pulling image failed" in deploy.message
    assert deploy.evidence is not None
    (found,) = evidence_of(runtime.database, lane=LANE)
    assert found.plan_id == plan.plan_id and found.action_id == deploy.action_id
    evidence = found.evidence
    assert evidence["status"] == "error" and evidence["error"] is None
    assert evidence["title"].startswith("setpoint product:shop/testing")
    assert evidence["started_at"] and evidence["finished_at"]
    assert evidence["log_tail"][-1] == "❌ Pulling image failed"
    lines = found.lines()
    assert any("none given" in line for line in lines) and lines[-1].endswith("failed")
    assert evidence_of(runtime.database, plan_id=plan.plan_id)[0].evidence == evidence
    shown = json.dumps(found.as_json())
    assert not any(secret in shown for secret in ALL_SECRET_VALUES)


async def test_an_unreadable_log_is_said_and_the_deploy_still_counts_as_failed(
    runtime: Runtime, emulator: Emulator
) -> None:
    emulator.faults.fail_next_deploy()
    emulator.faults.error_rate("deployment.readLogs", 1.0, status=400)
    result = await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
    deploy = next(a for a in result.actions if a.op == Op.deploy)
    assert deploy.result == "retry" and "DeployFailed" in deploy.message
    (found,) = evidence_of(runtime.database, lane=LANE)
    assert "log_unavailable" in found.evidence and "log_tail" not in found.evidence


async def test_the_lane_page_shows_the_last_failure(runtime: Runtime, emulator: Emulator) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import httpx

    from reconciler.demo.loopback import serve
    from reconciler.web import PageAccess, ReviewSite, create_review_app

    @asynccontextmanager
    async def no_runtime() -> AsyncIterator[Runtime]:
        raise AssertionError("the page only reads")
        yield  # pragma: no cover

    emulator.faults.fail_next_deploy()
    await apply_plan(runtime, (await compute_plan(runtime, [LANE])).plan_id)
    site = ReviewSite(database=runtime.database, open_runtime=no_runtime, access=PageAccess.open)
    with serve(create_review_app(site)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            page = (await http.get("/lanes/product/shop/testing")).text
    assert "Last failure" in page and "❌ Pulling image failed" in page
    assert "none given (Dokploy leaves it empty)" in page
