"""A create whose answer cannot be read did its work all the same: Setpoint finds the object
again by name and owns it, as it does after an empty answer, instead of leaving it unowned
(which blocked the lane `not_owned` until someone adopted it)."""

from __future__ import annotations

from collections import Counter

import pytest

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.runtime import Runtime
from tests.reconciler.conftest import owned_service_of

CREATES = ("project.create", "environment.create", "application.create", "compose.create")


@pytest.mark.parametrize("fault", ["truncated_body", "empty_body"])
async def test_creates_answered_unreadably_are_found_by_name_and_owned(
    runtime: Runtime, emulator: Emulator, fault: str
) -> None:
    for procedure in CREATES:
        getattr(emulator.faults, fault)(procedure)
    plan = await compute_plan(runtime)
    created = [a for a in plan.actions if a.op in ("create_application", "create_compose")]
    assert created
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, [r.message for r in result.actions if r.result != "ok"]

    for procedure in CREATES:
        getattr(emulator.faults, fault)(procedure, on=False)
    for action in created:
        assert owned_service_of(runtime.database, action.lane) is not None, action.lane
    summary = emulator.summary()
    services = [*summary["applications"], *summary["compose"]]
    assert [name for name, n in Counter(services).items() if n > 1] == []
    again = await compute_plan(runtime)
    assert again.blockers == [] and again.actions == [], (again.blockers, again.actions)
