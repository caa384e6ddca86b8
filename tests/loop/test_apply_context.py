"""The loop's apply of a lane it has just planned gates and re-reads with the batch's context
rather than building a second one (issue 23: the apply's own start), and still refuses a
plan that what exists, or the desired state, moved away from between plan and apply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core import planning
from reconciler.core.apply import ApplyResult
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.plans import BlockerType
from reconciler.loop import targets, worker
from reconciler.loop.contexts import SharedContext
from reconciler.loop.verdicts import LaneVerdict
from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.loop.support import fast_engine
from tests.reconciler.conftest import dokploy, store_fleet
from tests.support.fleets import example_fleet
from tests.support.workflow_requests import request_lane

LANE = "product:shop/testing"


def _count_context_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per pass context built from now on (whoever builds it)."""
    builds: list[str] = []
    build = planning._load_context

    def counted(runtime: Runtime) -> planning.PassContext:
        builds.append("built")
        return build(runtime)

    monkeypatch.setattr(planning, "_load_context", counted)
    return builds


async def _work_request(runtime: Runtime, contexts: SharedContext) -> list[LaneVerdict]:
    verdicts: list[LaneVerdict] = []

    async def finish(given: list[LaneVerdict]) -> None:
        verdicts.extend(given)

    await worker.work_batch(runtime, [LANE], finish, contexts)
    return verdicts


def _edit_the_desired_state(engine: Engine, tmp_path: Path) -> None:
    fleet = example_fleet(tmp_path)
    shop = fleet / "shop.yaml"
    shop.write_text(shop.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    store_fleet(engine, fleet)


def _refusals(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        records = audit.list_records(session, event=AuditEvent.apply_refused)
    return [str(r.data["blocker"]) for r in records]


async def test_a_requested_lane_is_applied_without_building_a_second_context(
    runtime: Runtime, engine: Engine, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.clock = lambda: 1_000.0  # a context's age (loop/contexts.py) is no question here
    request_lane(engine, LANE, apply=True)
    builds = _count_context_builds(monkeypatch)
    contexts = SharedContext()
    verdicts = await _work_request(runtime, contexts)
    assert [(v.lane, v.result.outcome) for v in verdicts] == [(LANE, LaneOutcome.applied)]
    assert "shop-testing" in emulator.summary()["applications"]
    assert len(builds) == 1, "the apply used the context its plan was made from"
    assert contexts.built == 1


def _before_the_first_apply(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[], Awaitable[None]]
) -> None:
    """`change` happens once, after the batch planned the lane and before its apply starts."""
    apply = targets.apply_guarded
    changed: list[bool] = []

    async def changing_first(*args: Any, **kwargs: Any) -> ApplyResult:
        if not changed:
            changed.append(True)
            await change()
        return await apply(*args, **kwargs)

    monkeypatch.setattr(worker, "apply_guarded", changing_first)


async def test_a_hand_edit_between_plan_and_apply_is_still_refused_with_the_shared_context(
    runtime: Runtime, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant 6: the apply reuses the batch's context, not what the plan read. The service
    is edited by hand after the batch planned it: the plan is refused as stale, nothing is
    changed by it, and the request is planned once more from what exists now."""
    await fast_engine(runtime).run_once()  # the fleet converges first
    _edit_the_desired_state(engine, tmp_path)  # the request has a change to apply
    runtime.clock = lambda: 1_000.0
    request_lane(engine, LANE, apply=True)

    async def edit_by_hand() -> None:
        app = next(
            a
            for p in await dokploy(runtime).project_all()
            for e in p.environments
            for a in e.applications
            if a.name == "shop-testing"
        )
        await dokploy(runtime).application_save_docker_provider(
            app.application_id, docker_image="nginx:hand-edit"
        )

    _before_the_first_apply(monkeypatch, edit_by_hand)
    contexts = SharedContext()
    verdicts = await _work_request(runtime, contexts)
    assert _refusals(engine) == [BlockerType.stale_plan.value]
    assert contexts.built == 1, "the refusal came with the batch's own context"
    assert [(v.lane, v.result.outcome) for v in verdicts] == [(LANE, LaneOutcome.applied)]


async def test_a_desired_state_change_between_plan_and_apply_builds_a_new_context(
    runtime: Runtime, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant 13: the desired state moved after the batch planned; the apply does not
    gate with the batch's context (built from the old one): it builds one from the new
    desired state, which refuses the plan as stale."""
    runtime.clock = lambda: 1_000.0
    request_lane(engine, LANE, apply=True)
    builds = _count_context_builds(monkeypatch)

    async def edit_the_desired_state() -> None:
        _edit_the_desired_state(engine, tmp_path)

    _before_the_first_apply(monkeypatch, edit_the_desired_state)
    verdicts = await _work_request(runtime, SharedContext())
    assert _refusals(engine) == [BlockerType.stale_plan.value]
    assert len(builds) == 2, "the batch's context, then one from the new desired state"
    assert [(v.lane, v.result.outcome) for v in verdicts] == [(LANE, LaneOutcome.applied)]
