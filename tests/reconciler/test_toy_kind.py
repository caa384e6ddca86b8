"""A second kind defined only here, unlike product in every way the contract allows.

`kiln` lanes live in an in-memory yard. The kind raises blocker reasons of its own (one
that time mends, one that needs an operator), proposes its actions out of order and lets
its operations' phases order them, and has no health checks: the runtime it runs on has
no health probe and no Dokploy at all. Planned, applied, audited, shown and requeued by
the real engine, with nothing of it in core/, records/ or loop/ (docs/architecture.md,
"How a kind plugs in", the contract table this test exercises).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from sqlalchemy.engine import Engine

from reconciler.core.apply import apply_plan
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import Claim, Done, ObjectRef, Outcome
from reconciler.core.planning import compute_plan
from reconciler.core.plans import (
    Action,
    BlastRadiusGuard,
    Blocker,
    Effect,
    Risk,
    lane_key,
    name_of_lane,
)
from reconciler.core.reasons import BlockerReason, reason_table
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import (
    LaneDiff,
    LaneKind,
    Observation,
    OpSpec,
    ProposedAction,
    op_table,
)
from reconciler.presentation.console import render_plan
from reconciler.records import audit, ownership, plan_store, status
from reconciler.records.database import session_scope
from reconciler.records.work_queue import queued
from reconciler.runtime import Runtime
from reconciler.settings import Settings
from tests.loop.support import fast_engine
from tests.support.toy_policy import AllowingPolicy

KILN = "kiln"
KILN_OPS = op_table(
    OpSpec("stack", 0, Effect.create, Risk.safe),
    OpSpec("fire", 1, Effect.run, Risk.safe),
    OpSpec("cool", 2, Effect.run, Risk.safe),
)
# Its own vocabulary: the engine has never heard of either.
STILL_HOT = BlockerReason(
    "kiln_still_hot", temporary=True, advice="Wait: the last firing is still cooling."
)
CRACKED = BlockerReason(
    "kiln_cracked", temporary=False, advice="Reline the kiln, then mark it mended."
)


@dataclass
class Yard:
    """The outside world of kilns."""

    stacked: dict[str, str] = field(default_factory=dict)  # name -> id
    hot: set[str] = field(default_factory=set)
    cracked: set[str] = field(default_factory=set)
    done: list[tuple[str, str]] = field(default_factory=list)  # (op, kiln), in order


@dataclass
class KilnExecutor:
    yard: Yard

    async def execute(self, action: Action) -> Outcome:
        name = name_of_lane(action.lane)
        self.yard.done.append((action.op, name))
        if action.op == "stack":
            self.yard.stacked[name] = f"k-{name}"
            ref = ObjectRef(KILN, "kiln", f"k-{name}")
            return Done(f"stacked {name}", claims=(Claim(ref=ref, name=name),))
        return Done(f"{action.op} {name}")


@dataclass
class KilnKind:
    """The whole of a kind: the required members and no optional hook."""

    desired: Mapping[str, int]  # kiln name -> generation
    owned: OwnershipSnapshot
    yard: Yard
    name: str = KILN
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: KILN_OPS)
    guard: BlastRadiusGuard = field(default_factory=BlastRadiusGuard)
    reasons: Mapping[str, BlockerReason] = field(
        default_factory=lambda: reason_table(STILL_HOT, CRACKED)
    )

    def lanes(self) -> list[str]:
        wanted = {lane_key(KILN, n) for n in self.desired}
        return sorted(wanted | self.owned.lanes_of_kind(KILN))

    def policy(self, lane: str) -> AllowingPolicy:
        return AllowingPolicy(self.desired.get(name_of_lane(lane)))

    async def preflight(self) -> None:
        return None

    async def observe(self, lanes: Sequence[str]) -> Observation:
        seen = Observation()
        for lane in lanes:
            kiln = self.yard.stacked.get(name_of_lane(lane))
            seen.lanes[lane] = kiln
            seen.fingerprint(lane, f"kiln:{lane}", kiln or "absent")
        return seen

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        name = name_of_lane(lane)
        result = LaneDiff(lane=lane)
        for reason in (CRACKED, STILL_HOT):
            if name in (self.yard.cracked if reason is CRACKED else self.yard.hot):
                result.blockers.append(Blocker(type=reason.code, lane=lane, message=name))
        if result.blockers or observation.lanes.get(lane) is not None:
            return result
        # Proposed last step first: the operations' phases put them in order.
        for op in ("cool", "fire", "stack"):
            result.actions.append(ProposedAction(op, op, f"kiln/{name}", f"{op} {name}"))
        return result

    def executor(self, runtime: Runtime) -> KilnExecutor:
        return KilnExecutor(self.yard)


@dataclass
class KilnWorld:
    yard: Yard = field(default_factory=Yard)
    desired: dict[str, int] = field(default_factory=lambda: {"east": 1, "west": 1})

    def kinds(
        self, runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot
    ) -> list[LaneKind]:
        return [KilnKind(dict(self.desired), owned, self.yard)]


def kiln_runtime(engine: Engine, world: KilnWorld) -> Runtime:
    """A runtime with the kiln kind only: no Dokploy, no GitHub, no health probe."""
    settings = Settings(database_url="sqlite://")
    return Runtime(database=engine, settings=settings, actor="test-operator", kinds=world.kinds)


async def test_a_toy_kind_orders_its_own_actions_and_applies_with_no_health_checks(
    engine: Engine,
) -> None:
    world = KilnWorld()
    runtime = kiln_runtime(engine, world)
    assert runtime.providers == {}  # nothing for health checks, nor any provider at all

    plan = await compute_plan(runtime, ["kiln:east"])
    assert [(a.id, a.op) for a in plan.actions] == [("a1", "stack"), ("a2", "fire"), ("a3", "cool")]
    assert plan.blockers == []
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, result
    assert world.yard.done == [("stack", "east"), ("fire", "east"), ("cool", "east")]

    (owned,) = ownership.snapshot(engine).for_lane("kiln:east")
    assert (owned.kind, owned.object_id) == (KILN, "k-east")
    (row,) = [r for r in status.all_statuses(engine) if r.lane == "kiln:east"]
    ready = next(c for c in row.conditions if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Converged")
    with session_scope(engine) as session:
        results = audit.list_records(session, lane="kiln:east", event="action_result")
        assert audit.verify_chain(session).ok
    assert [r.data["op"] for r in results] == ["stack", "fire", "cool"]


async def test_a_toy_kinds_own_reasons_block_and_its_declarations_decide_the_retry(
    engine: Engine,
) -> None:
    world = KilnWorld()
    world.yard.hot.add("east")
    world.yard.cracked.add("west")
    runtime = kiln_runtime(engine, world)

    plan = await compute_plan(runtime)
    assert sorted((b.type, b.lane) for b in plan.blockers) == [
        ("kiln_cracked", "kiln:west"),
        ("kiln_still_hot", "kiln:east"),
    ]
    assert plan.actions == []
    refused = await apply_plan(runtime, plan.plan_id)
    assert refused.refusal is not None and refused.refusal.type in {
        "kiln_cracked",
        "kiln_still_hot",
    }

    # The loop asks the kind's declaration: a hot kiln is tried again after its backoff, a
    # cracked one waits for an operator (not queued again), and its status says why.
    await fast_engine(runtime).run_once()
    with session_scope(engine) as session:
        rows = {row.lane: row for row in queued(session)}
    assert set(rows) == {"kiln:east"}
    assert rows["kiln:east"].attempts >= 1 and "kiln_still_hot" in (
        rows["kiln:east"].last_error or ""
    )
    stalled = {
        r.lane: next(c for c in r.conditions if c["type"] == "Stalled")
        for r in status.all_statuses(engine)
    }
    assert (stalled["kiln:west"]["status"], stalled["kiln:west"]["reason"]) == (
        "True",
        "kiln_cracked",
    )

    # A stored plan keeps its kind's reasons when that kind is gone, and still renders.
    runtime.kinds = lambda *_: []
    stored, _ = plan_store.load(engine, plan.plan_id)
    assert {b.type for b in stored.blockers} == {"kiln_cracked", "kiln_still_hot"}
    shown = io.StringIO()
    render_plan(Console(file=shown, width=200), stored)
    assert "blocked kiln_still_hot on kiln:east" in shown.getvalue()
