"""Item 3: after Dokploy lost objects, `forget` drops a lane's records, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.forgetting import forget_lane
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.errors import ForgetRefused
from reconciler.records import audit, ownership, status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.support.fleets import converge

LANE = "product:docs-site/testing"


def owned_lanes(engine: Engine) -> set[str]:
    return ownership.snapshot(engine).lanes_of_kind("product")


def forgotten_records(engine: Engine) -> list[audit.AuditRecord]:
    with session_scope(engine) as session:
        return audit.list_records(session, event=AuditEvent.lane_forgotten, limit=100)


async def test_after_dokploy_lost_everything_forget_lets_plans_go_on(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    await converge(runtime)
    emulator.reset()  # Dokploy reinstalled: nothing Setpoint made exists any more
    blocked = await compute_plan(runtime)
    assert [b.type for b in blocked.blockers] == [BlockerType.observation_incomplete]
    assert "setpoint forget LANE" in blocked.blockers[0].message

    lanes = sorted(owned_lanes(engine))
    for lane in lanes:
        forgotten = await forget_lane(runtime, lane)
        assert forgotten.lane == lane and forgotten.objects
    assert owned_lanes(engine) == set()
    assert [r.lane for r in forgotten_records(engine)] == lanes
    assert "not found" in forgotten_records(engine)[0].data["confirmed"]

    again = await compute_plan(runtime)
    assert again.blockers == []
    assert LANE in {a.lane for a in again.actions if a.op == "create_application"}


async def test_forget_refuses_while_an_object_still_exists(
    runtime: Runtime, engine: Engine
) -> None:
    await converge(runtime)
    before = ownership.snapshot(engine).for_lane(LANE)
    with pytest.raises(
        ForgetRefused, match=r"still exists in Dokploy \(and 1 more\); nothing forgotten"
    ):
        await forget_lane(runtime, LANE)
    assert ownership.snapshot(engine).for_lane(LANE) == before
    assert forgotten_records(engine) == []


async def test_a_failed_read_is_not_a_confirmation(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    await converge(runtime)
    emulator.reset()
    emulator.faults.error_rate("application.one", 1.0)
    with pytest.raises(ForgetRefused, match=r"reading application .* failed"):
        await forget_lane(runtime, LANE)
    assert ownership.snapshot(engine).for_lane(LANE)


async def test_forget_refuses_when_dokploy_is_not_answering_properly(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    """A wrong URL or key 404s or 401s every read: preflight must pass before any read
    counts."""
    await converge(runtime)
    emulator.reset()
    emulator.faults.unauthorized()
    with pytest.raises(ForgetRefused, match="cannot confirm anything"):
        await forget_lane(runtime, LANE)
    assert ownership.snapshot(engine).for_lane(LANE)


async def test_forget_names_what_is_wrong_with_the_lane(runtime: Runtime, engine: Engine) -> None:
    with pytest.raises(ForgetRefused, match="unknown lane"):
        await forget_lane(runtime, "product:nope/never")
    with pytest.raises(ForgetRefused, match="owns nothing in lane"):
        await forget_lane(runtime, LANE)  # desired, but nothing was ever created
    assert status.all_statuses(engine) == []
