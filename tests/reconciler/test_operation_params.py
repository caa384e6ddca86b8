"""Typed operation parameters and explicit ordering, through the whole engine.

A `lamp` kind defined only here declares a parameters model per operation. Parameters its
model refuses (a misspelt key, a wrong type, another operation's model) refuse the plan
before anything is stored or audited, so nothing can fail at apply time after an intent
was recorded. Its actions order themselves across lanes with `after`/`provides` refs, and
the executor reads its parameters back typed and receives the ids earlier actions made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from reconciler.core.apply import apply_plan
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import Done, Outcome
from reconciler.core.planning import compute_plan
from reconciler.core.plans import (
    Action,
    BlastRadiusGuard,
    Effect,
    Risk,
    lane_key,
    name_of_lane,
)
from reconciler.core.reasons import BlockerReason
from reconciler.errors import ActionParamsRefused
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import (
    LaneDiff,
    LaneKind,
    Observation,
    OpParams,
    OpSpec,
    ProposedAction,
    op_table,
)
from reconciler.records import audit, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.support.toy_policy import AllowingPolicy

LAMP = "lamp"
WIRE = "wire:main"  # the ref the first lane's wire provides and every switch waits for


class LayWire(OpParams):
    gauge: int


class SwitchOn(OpParams):
    colour: str
    brightness: int


LAMP_OPS = op_table(
    OpSpec("lay_wire", 0, Effect.create, Risk.safe, shared=True, params=LayWire),
    OpSpec("switch_on", 1, Effect.update, Risk.safe, params=SwitchOn),
)


@dataclass
class LampExecutor:
    switched: list[tuple[str, str, int, dict[str, str]]]

    async def execute(self, action: Action) -> Outcome:
        if action.op == "lay_wire":
            gauge = LayWire.of(action).gauge
            return Done(f"laid a {gauge} mm wire", provided={WIRE: "wire-7"})
        switch = SwitchOn.of(action)  # typed: mypy sees colour and brightness
        self.switched.append(
            (action.lane, switch.colour, switch.brightness, dict(action.known or {}))
        )
        return Done(f"{switch.colour} at {switch.brightness}")


@dataclass
class LampKind:
    """Lanes `lamp:a` and `lamp:b`; `switch` is what each lane's switch_on is given."""

    switch: Mapping[str, Any]
    switched: list[tuple[str, str, int, dict[str, str]]]
    wrong_model: bool = False
    name: str = LAMP
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: LAMP_OPS)
    guard: BlastRadiusGuard = field(default_factory=BlastRadiusGuard)
    reasons: Mapping[str, BlockerReason] = field(default_factory=dict)  # none of its own

    def lanes(self) -> list[str]:
        return [lane_key(LAMP, "a"), lane_key(LAMP, "b")]

    def policy(self, lane: str) -> AllowingPolicy:
        return AllowingPolicy()

    async def preflight(self) -> str | None:
        return None

    async def observe(self, lanes: Sequence[str]) -> Observation:
        seen = Observation()
        for lane in lanes:
            seen.fingerprint(lane, f"lamp:{lane}", "dark")
        return seen

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        wire = ProposedAction(
            "wire", "lay_wire", "wire/main", "no wire", params=LayWire(gauge=2), provides=(WIRE,)
        )
        params: OpParams = (
            LayWire(gauge=3) if self.wrong_model else SwitchOn.model_validate(self.switch)
        )
        # Every switch waits for the one wire the plan lays (shared: kept once).
        switch = ProposedAction(
            "switch",
            "switch_on",
            f"lamp/{name_of_lane(lane)}",
            "dark",
            params=params,
            after=(WIRE,),
        )
        return LaneDiff(lane, [wire, switch])

    def executor(self, runtime: Runtime) -> LampExecutor:
        return LampExecutor(self.switched)


def with_lamps(
    runtime: Runtime, switch: Mapping[str, Any], *, wrong_model: bool = False
) -> list[tuple[str, str, int, dict[str, str]]]:
    switched: list[tuple[str, str, int, dict[str, str]]] = []

    def kinds(runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot) -> list[LaneKind]:
        return [LampKind(switch, switched, wrong_model=wrong_model)]

    runtime.kinds = kinds
    return switched


async def test_typed_parameters_and_after_refs_run_in_order_with_the_ids_made_earlier(
    runtime: Runtime, engine: Engine
) -> None:
    switched = with_lamps(runtime, {"colour": "amber", "brightness": 7})
    plan = await compute_plan(runtime, ["lamp:a", "lamp:b"])
    wire, *switches = plan.actions
    assert (wire.op, wire.provides, wire.params) == ("lay_wire", (WIRE,), {"gauge": 2})
    assert [(s.lane, s.after, s.depends_on) for s in switches] == [
        ("lamp:a", (WIRE,), [wire.id]),
        ("lamp:b", (WIRE,), [wire.id]),  # on another lane's action
    ]
    assert [s.params for s in switches] == [{"colour": "amber", "brightness": 7}] * 2

    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, [r.message for r in result.actions]
    assert sorted(switched) == [
        ("lamp:a", "amber", 7, {WIRE: "wire-7"}),
        ("lamp:b", "amber", 7, {WIRE: "wire-7"}),  # the id another lane's action made
    ]
    stored, _ = plan_store.load(engine, plan.plan_id)
    assert all(a.known is None for a in stored.actions)  # ids are the apply's, never stored


@pytest.mark.parametrize(
    ("switch", "wrong_model", "said"),
    [
        ({"colour": "amber", "brightnes": 7}, False, "brightnes: Extra inputs are not permitted"),
        ({"colour": "amber", "brightness": "high"}, False, "brightness: Input should be"),
        ({"colour": "amber", "brightness": 7}, True, "switch_on takes SwitchOn parameters"),
    ],
    ids=["misspelt", "mistyped", "another-operation's-model"],
)
async def test_parameters_their_operation_refuses_refuse_the_plan_before_any_audit(
    runtime: Runtime, engine: Engine, switch: dict[str, Any], wrong_model: bool, said: str
) -> None:
    switched = with_lamps(runtime, switch, wrong_model=wrong_model)
    with session_scope(engine) as session:
        audited_before = len(audit.list_records(session, limit=10_000))

    with pytest.raises(ActionParamsRefused) as refused:
        await compute_plan(runtime, ["lamp:a", "lamp:b"])

    assert str(refused.value).startswith("lamp:a: ")  # names the lane
    assert said in str(refused.value)
    assert "high" not in str(refused.value)  # the field, never the value
    assert plan_store.summaries(engine) == []  # nothing stored to apply
    with session_scope(engine) as session:
        assert len(audit.list_records(session, limit=10_000)) == audited_before
        assert audit.list_records(session, event=AuditEvent.plan_computed) == []
        assert audit.list_records(session, event=AuditEvent.apply_started) == []
    assert switched == []
