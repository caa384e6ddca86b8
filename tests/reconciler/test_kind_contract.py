"""A lane kind defined only here goes through the whole engine with no change to engine code.

`beacon` lanes live in an in-memory provider. Its kind declares its own operations, policy,
observer and executor; the engine plans, gates, applies, audits, requeues (the executor's
"not yet") and records status and ownership for it exactly as for product lanes. The same
toy provider going down proves that an outage of one provider blocks only its own lanes.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from reconciler.core.apply import apply_plan
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import Claim, Done, ObjectRef, Outcome, Retry
from reconciler.core.planning import compute_plan
from reconciler.core.plans import (
    Action,
    BlastRadiusGuard,
    BlockerType,
    Effect,
    Risk,
    Trigger,
    lane_key,
    name_of_lane,
)
from reconciler.core.reasons import BlockerReason
from reconciler.fleet import DesiredFleet
from reconciler.kinds import all_kinds
from reconciler.kinds.base import (
    LaneDiff,
    LaneKind,
    Observation,
    ObservationProblem,
    OpSpec,
    ProposedAction,
    op_table,
)
from reconciler.loop.passes import reconcile_pass
from reconciler.records import audit, ownership, status
from reconciler.records.database import session_scope
from reconciler.records.plan_store import PlanStatus, load
from reconciler.runtime import Runtime, ShiftedClock, utcnow
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import store_fleet

BEACON = "beacon"
# A busy ping asks to be tried again this much later on the runtime's clock: far more than
# a loaded machine takes between two passes, so only a moved clock makes it due.
RETRY_AFTER = 30.0
BEACON_OPS = op_table(
    OpSpec("light", 0, Effect.create, Risk.safe),
    OpSpec("ping", 1, Effect.run, Risk.safe),
    OpSpec("douse", 2, Effect.delete, Risk.destructive),
)


@dataclass
class BeaconProvider:
    """The outside world of beacons: lit ones, and how often each must be pinged."""

    lit: dict[str, str] = field(default_factory=dict)  # name -> id
    busy_pings: int = 1  # pings answered "not yet" before one goes through
    down: bool = False
    pings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BeaconPolicy:
    generation: int | None
    protect: bool = False
    may_douse: bool = False
    requires_reason: bool = False

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        if action.effect is Effect.delete and not self.may_douse:
            return "this beacon policy does not allow douse; set may_douse"
        return None


@dataclass
class BeaconExecutor:
    provider: BeaconProvider

    async def execute(self, action: Action) -> Outcome:
        name = name_of_lane(action.lane)
        if action.op == "light":
            self.provider.lit[name] = f"b-{name}"
            ref = ObjectRef(BEACON, "beacon", f"b-{name}")
            return Done(f"lit {name}", claims=(Claim(ref=ref, name=name),))
        if action.op == "ping":
            if self.provider.busy_pings > 0:
                self.provider.busy_pings -= 1
                return Retry(after=RETRY_AFTER, reason=f"{name} is busy")
            self.provider.pings.append(name)
            return Done(f"pinged {name}")
        beacon_id = self.provider.lit.pop(name)
        return Done(f"doused {name}", releases=(ObjectRef(BEACON, "beacon", beacon_id),))


@dataclass
class BeaconKind:
    desired: Mapping[str, int]  # beacon name -> generation
    owned: OwnershipSnapshot
    provider: BeaconProvider
    name: str = BEACON
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: BEACON_OPS)
    guard: BlastRadiusGuard = field(default_factory=lambda: BlastRadiusGuard(5, 1.0))
    reasons: Mapping[str, BlockerReason] = field(default_factory=dict)  # raises none of its own
    may_douse: bool = False

    def lanes(self) -> list[str]:
        wanted = {lane_key(BEACON, n) for n in self.desired}
        return sorted(wanted | self.owned.lanes_of_kind(BEACON))

    def policy(self, lane: str) -> BeaconPolicy:
        return BeaconPolicy(self.desired.get(name_of_lane(lane)), may_douse=self.may_douse)

    async def preflight(self) -> str | None:
        return None

    async def observe(self, lanes: Sequence[str]) -> Observation:
        if self.provider.down:
            return Observation(problems=[ObservationProblem(None, "beacon provider is down")])
        seen = Observation()
        for lane in lanes:
            beacon_id = self.provider.lit.get(name_of_lane(lane))
            seen.lanes[lane] = beacon_id
            seen.fingerprint(lane, f"beacon:{lane}", beacon_id or "absent")
        return seen

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        lit, wanted = observation.lanes.get(lane), name_of_lane(lane) in self.desired
        result = LaneDiff(lane=lane)
        if wanted and lit is None:
            result.actions.append(ProposedAction("light", "light", f"beacon/{lane}", "not lit"))
        if wanted:
            result.actions.append(ProposedAction("ping", "ping", f"beacon/{lane}", "ping"))
        if not wanted and lit is not None:
            result.actions.append(ProposedAction("douse", "douse", f"beacon/{lane}", "removed"))
        return result

    def executor(self, runtime: Runtime) -> BeaconExecutor:
        return BeaconExecutor(self.provider)


@dataclass
class BeaconWorld:
    provider: BeaconProvider = field(default_factory=BeaconProvider)
    desired: dict[str, int] = field(default_factory=lambda: {"north": 1})
    may_douse: bool = False

    def kinds(
        self, runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot
    ) -> list[LaneKind]:
        beacon = BeaconKind(dict(self.desired), owned, self.provider, may_douse=self.may_douse)
        return [*all_kinds(runtime, fleet, owned), beacon]


def with_beacons(runtime: Runtime) -> BeaconWorld:
    world = BeaconWorld()
    runtime.kinds = world.kinds
    return world


async def test_a_kind_defined_only_in_tests_is_planned_applied_audited_requeued_and_shown(
    runtime: Runtime, engine: Engine
) -> None:
    world = with_beacons(runtime)
    plan = await compute_plan(runtime, ["beacon:north"])
    assert [(a.op, a.effect, a.lane) for a in plan.actions] == [
        ("light", Effect.create, "beacon:north"),
        ("ping", Effect.run, "beacon:north"),
    ]
    assert plan.generations == {"beacon:north": 1}

    first = await apply_plan(runtime, plan.plan_id)
    assert first.status == "waiting"  # lit, but the ping said "not yet"
    assert [r.result for r in first.actions] == ["ok", "retry"]
    assert load(engine, plan.plan_id)[1] is PlanStatus.waiting
    (owned,) = ownership.snapshot(engine).for_lane("beacon:north")
    assert (owned.kind, owned.object_id) == (BEACON, "b-north")
    (row,) = [r for r in status.all_statuses(engine) if r.lane == "beacon:north"]
    reasons = {c["type"]: (c["status"], c["reason"]) for c in row.conditions}
    assert reasons == {
        "Ready": ("False", "Waiting"),  # Ready always says why
        "Reconciling": ("True", "Waiting"),
        "Stalled": ("False", "AsExpected"),  # a False condition has nothing to explain
    }
    assert row.retry_at is not None

    # Requeued: a scheduled pass leaves the lane alone until its retry time...
    early = {r.lane: r.outcome for r in (await reconcile_pass(runtime)).lanes}
    assert early["beacon:north"] == "waiting" and world.provider.pings == []
    runtime.clock = ShiftedClock(offset=RETRY_AFTER + 1)  # past its retry time
    # ...then plans and applies it, as its policy allows a scheduled pass to.
    later = {r.lane: r for r in (await reconcile_pass(runtime)).lanes}
    assert later["beacon:north"].outcome == "applied", later["beacon:north"].detail
    assert world.provider.pings == ["north"]
    (row,) = [r for r in status.all_statuses(engine) if r.lane == "beacon:north"]
    assert row.retry_at is None and row.observed_generation == 1

    with session_scope(engine) as session:
        results = audit.list_records(session, lane="beacon:north", event="action_result")
        assert audit.verify_chain(session).ok
    assert [r.data["result"] for r in results] == ["ok", "retry", "ok"]


async def test_policy_of_the_kind_decides_unattended_deletions(
    runtime: Runtime, engine: Engine
) -> None:
    world = with_beacons(runtime)
    world.provider.busy_pings = 0
    assert (await apply_plan(runtime, (await compute_plan(runtime, ["north"])).plan_id)).ok
    world.desired.clear()  # the beacon is no longer desired: its kind plans the douse

    plan = await compute_plan(runtime, ["beacon:north"])
    assert [a.op for a in plan.actions] == ["douse"]
    refused = await apply_plan(runtime, plan.plan_id, trigger=Trigger.schedule)
    assert refused.refusal is not None
    assert refused.refusal.type == BlockerType.action_not_allowed
    assert "may_douse" in refused.refusal.message

    world.may_douse = True
    allowed = await compute_plan(runtime, ["beacon:north"])
    assert (await apply_plan(runtime, allowed.plan_id, trigger=Trigger.schedule)).ok
    assert world.provider.lit == {} and ownership.snapshot(engine).for_lane("beacon:north") == []


async def test_an_outage_of_one_provider_blocks_only_the_lanes_that_read_it(
    runtime: Runtime, engine: Engine
) -> None:
    world = with_beacons(runtime)
    world.provider.down = True
    plan = await compute_plan(runtime)
    outage = [b for b in plan.blockers if b.type == BlockerType.observation_incomplete]
    assert [(b.lane, b.kind) for b in outage] == [(None, BEACON)]
    assert plan.blockers_for("beacon:north") and not plan.blockers_for("product:shop/testing")
    assert not [a for a in plan.actions if a.lane.startswith("beacon:")]
    assert [a for a in plan.actions if a.lane == "product:shop/testing"]

    report = {r.lane: r.outcome for r in (await reconcile_pass(runtime)).lanes}
    assert report["beacon:north"] == "blocked"
    assert report["product:shop/testing"] == "applied"
    assert report["product:ledger/testing"] == "applied"


async def test_another_kinds_service_and_a_lane_named_like_a_preview_are_not_deleted(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLES, fleet)
    docs = (fleet / "fleet" / "docs-site.yaml").read_text()
    (fleet / "fleet" / "docs-site.yaml").write_text(docs.replace("name: testing", "name: pr-1", 1))
    store_fleet(engine, fleet, prune=True)
    # A Dokploy service a preview lane owns, for a slug a product lane also uses.
    ownership.claim(
        engine,
        Claim(ref=ObjectRef("dokploy", "application", "preview-app-1"), name="docs-site-pr-1"),
        utcnow(),
        kind="preview",
        lane="preview:docs-site/pr-1",
    )
    plan = await compute_plan(runtime)
    assert "product:docs-site/pr-1" in plan.lanes
    assert "preview:docs-site/pr-1" not in plan.lanes
    assert not [a for a in plan.actions if a.effect is Effect.delete]
    assert ownership.snapshot(engine).for_lane("preview:docs-site/pr-1")


async def test_an_edit_to_another_product_does_not_make_a_plan_stale(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLES, fleet)
    plan = await compute_plan(runtime, ["shop/testing"])
    ledger = (fleet / "fleet" / "ledger.yaml").read_text()
    (fleet / "fleet" / "ledger.yaml").write_text(ledger.replace("TZ: UTC", "TZ: Europe/Paris", 1))
    store_fleet(engine, fleet)
    assert (await apply_plan(runtime, plan.plan_id)).ok

    edited = await compute_plan(runtime, ["shop/testing"])
    shop = (fleet / "fleet" / "shop.yaml").read_text()
    (fleet / "fleet" / "shop.yaml").write_text(
        shop.replace("LOG_LEVEL: info", "LOG_LEVEL: debug", 1)
    )
    store_fleet(engine, fleet)
    refused = await apply_plan(runtime, edited.plan_id)
    assert refused.refusal is not None and refused.refusal.type == BlockerType.stale_plan
    assert "product:shop/testing" in refused.refusal.message
