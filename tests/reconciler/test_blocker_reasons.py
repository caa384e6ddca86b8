"""Blocker reasons: the engine's own, the kinds' declared ones, and plans stored before.

A busy lane and a busy shared target have reasons of their own that time mends; a kind's
reason is whatever it declares; a plan an older Setpoint stored, with reasons from the
closed list it had then, still loads, keeps its digest, renders and is counted.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy.engine import Engine

from reconciler.api.metrics import STALLED_REASONS
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan, load_context
from reconciler.core.plans import Blocker, BlockerType, Plan, Trigger, plan_digest
from reconciler.core.reasons import BlockerReason, reason_book, reason_table
from reconciler.errors import ReasonClash
from reconciler.kinds import declared_reasons
from reconciler.kinds.product.reasons import PRODUCT_REASONS, ROUTE_CONFLICT
from reconciler.kinds.runner.reasons import RUNNER_REASONS
from reconciler.loop.targets import TARGET_PREFIX, apply_guarded
from reconciler.presentation.console import render_plan
from reconciler.records import audit, leases
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime, utcnow
from reconciler.web.advice import advice_for

LANE = "product:docs-site/testing"


async def test_a_busy_lane_is_refused_as_lane_busy_which_time_mends(
    runtime: Runtime, engine: Engine
) -> None:
    plan = await compute_plan(runtime, [LANE])
    assert leases.acquire(engine, LANE, "other-replica", ttl_seconds=60, clock=utcnow)
    refused = await apply_plan(runtime, plan.plan_id)
    assert refused.refusal is not None and refused.refusal.type == BlockerType.lane_busy
    assert declared_reasons().temporary(refused.refusal.type)


async def test_a_busy_shared_target_is_refused_as_target_busy_which_time_mends(
    runtime: Runtime, engine: Engine
) -> None:
    plan = await compute_plan(runtime, [LANE])
    (project,) = [a for a in plan.actions if a.op == "create_project"]
    target = TARGET_PREFIX + project.target
    assert leases.acquire(engine, target, "other-replica", ttl_seconds=60, clock=utcnow)
    # A short lease TTL: the worker waits twice that for the target before giving up.
    runtime.settings = runtime.settings.model_copy(update={"lease_ttl_seconds": 0.2})
    context = await load_context(runtime)
    refused = await apply_guarded(runtime, context.registry, plan.plan_id, Trigger.schedule)
    assert refused.refusal is not None and refused.refusal.type == BlockerType.target_busy
    assert project.target in refused.refusal.message
    assert declared_reasons().temporary(refused.refusal.type)
    with session_scope(engine) as session:
        (record,) = audit.list_records(session, event="apply_refused", plan_id=plan.plan_id)
    assert record.data["blocker"] == "target_busy"


def test_a_kind_may_not_take_an_engine_reason_nor_redeclare_another_kinds() -> None:
    mine = reason_table(BlockerReason("stale_plan", temporary=False))
    with pytest.raises(ReasonClash, match="kind toy declares reason stale_plan"):
        reason_book([("toy", mine)])
    hot = reason_table(BlockerReason(ROUTE_CONFLICT.code, temporary=True))
    with pytest.raises(ReasonClash, match="product and toy declare reason route_conflict"):
        reason_book([("product", PRODUCT_REASONS), ("toy", hot)])
    # Two kinds on one machinery (a product and its previews) share theirs.
    shared = reason_book([("product", PRODUCT_REASONS), ("preview", PRODUCT_REASONS)])
    assert shared.get("route_conflict") == ROUTE_CONFLICT


# What an older Setpoint stored: `BlockerType` was one closed list of every reason, and a
# busy lane was refused as `action_not_allowed`.
OLD_BLOCKERS: list[dict[str, Any]] = [
    {
        "type": "route_conflict",
        "lane": LANE,
        "message": "docs.example.com/ is routed",
        "details": {},
    },
    {"type": "host_full", "lane": "runner:ci/2", "message": "Host h1 holds 2", "details": {}},
    {"type": "action_not_allowed", "lane": LANE, "message": "lane is being reconciled"},
    {"type": "a_reason_since_retired", "lane": None, "message": "gone", "kind": "product"},
]


def _old_plan() -> tuple[dict[str, Any], str]:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    blockers = [Blocker.model_validate(b) for b in OLD_BLOCKERS]
    digest = plan_digest(
        desired_revision="r1", actions=[], blockers=blockers, fingerprints={}, generations={}
    )
    body = {
        "plan_id": "plan-0ld0ld0ld0l",
        "digest": digest,
        "created_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "created_by": "operator",
        "desired_revision": "r1",
        "lanes": [LANE, "runner:ci/2"],
        "actions": [],
        "blockers": OLD_BLOCKERS,
        "fingerprints": {},
    }
    return body, digest


def test_a_plan_stored_with_the_old_closed_list_loads_renders_and_is_counted() -> None:
    body, digest = _old_plan()
    plan = Plan.model_validate(body)
    assert [b.type for b in plan.blockers] == [b["type"] for b in OLD_BLOCKERS]
    again = plan_digest(
        desired_revision=plan.desired_revision,
        actions=plan.actions,
        blockers=plan.blockers,
        fingerprints=plan.fingerprints,
        generations=plan.generations,
    )
    assert again == digest  # the same bytes hashed: a stored plan is not made stale by this

    shown = io.StringIO()
    render_plan(Console(file=shown, width=200), plan)
    text = shown.getvalue()
    for blocker in OLD_BLOCKERS:
        assert f"blocked {blocker['type']}" in text

    route, host, busy, retired = plan.blockers
    assert advice_for(route) == ROUTE_CONFLICT.advice  # the product kind's word
    assert advice_for(host) == RUNNER_REASONS["host_full"].advice
    assert "unattended" in advice_for(busy)
    assert advice_for(retired).startswith("Read the message above")

    reasons = declared_reasons()
    assert reasons.temporary("deploy_failed") and not reasons.temporary("host_full")
    assert not reasons.temporary("a_reason_since_retired")  # waits for a change, not retried
    for code in ("route_conflict", "host_full", "deploy_failed", "lane_busy", "target_busy"):
        assert code in STALLED_REASONS
    assert "a_reason_since_retired" not in STALLED_REASONS  # counted as `other`
