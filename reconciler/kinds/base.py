"""The contract between the engine and a lane kind: the one way a kind plugs in.

A kind declares its operations (`OpSpec`: phase, effect, default risk, whether lanes share
the target, the model of its parameters), its lanes and their policy, how it checks its
providers, how it observes, how it diffs (pure) and how it executes an action (returning an
`Outcome`). The engine owns plans, gating, leases, audit, status and ownership records,
and never names a kind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.core.notices import LaneNotices
from reconciler.core.outcomes import Claim, Facts, LaneOutcome, ObjectRef, Outcome
from reconciler.core.plans import (
    Action,
    BlastRadiusGuard,
    Blocker,
    BlockerType,
    Change,
    Effect,
    Risk,
    Trigger,
)
from reconciler.core.reasons import BlockerReason

if TYPE_CHECKING:
    from desired_state.document import Document
    from reconciler.core.inventory import Owned, OwnershipSnapshot
    from reconciler.fleet import DesiredFleet
    from reconciler.health import HealthResult
    from reconciler.runtime import Runtime


class OpParams(BaseModel):
    """An operation's parameters: what its executor needs that is not a change (ids, names,
    secret *references*). Each kind declares one model per operation (`OpSpec.params`);
    the diff builds it, so a misspelt or mistyped parameter fails when the plan is built,
    before anything is audited. The plan stores it as JSON; the executor reads it back
    typed with `of`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def of(cls, action: Action) -> Self:
        """`action`'s parameters as this model (validated: stored plans outlive code)."""
        return cls.model_validate(action.params)


def params_problem(error: ValidationError) -> str:
    """One line on what a params model refused: the model and each field with its problem,
    never the value (a value could be anything the kind put there)."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or '(whole)'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )
    return f"{error.title} parameters refused: {problems}"


@dataclass(frozen=True)
class OpSpec:
    """One operation of a kind. `phase` orders the plan (a phase uses only what earlier
    phases made). A `shared` target names one outside object that lanes of any kind may
    propose (a product's project, which its previews use too): a plan makes it once, and the
    actions naming it in `after` depend on the one action kept that `provides` it (whose
    `Done.provided` hands its id on); an unattended apply leases the target across
    replicas. `params`: the model of the operation's parameters (none by default)."""

    name: str
    phase: int
    effect: Effect
    risk: Risk
    shared: bool = False
    params: type[OpParams] = OpParams


def op_table(*specs: OpSpec) -> Mapping[str, OpSpec]:
    return {spec.name: spec for spec in specs}


@dataclass(frozen=True)
class ProposedAction:
    """An action before the planner numbers it. `key` is local to the lane diff; `risk`
    None takes the operation's default; `params` is an instance of the operation's
    `OpSpec.params` model (the planner refuses any other).

    Ordering across actions (and lanes, and kinds) is by refs, names the kind chooses for
    outside objects: `provides` the refs this action makes (a project), `after` the refs it
    needs made first. The planner makes it depend on the action of the plan that provides
    each (a ref no action provides exists already), and at apply time hands it the ids
    those actions reported (`Action.known`)."""

    key: str
    op: str
    target: str
    reason: str
    risk: Risk | None = None
    changes: list[Change] = field(default_factory=list)
    params: OpParams = field(default_factory=OpParams)
    # Tuples: a plan of many lanes holds an action each, and an empty tuple costs nothing.
    after: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


@dataclass
class LaneDiff:
    lane: str
    actions: list[ProposedAction] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ObservationProblem:
    lane: str | None  # None: nothing the kind observed can be trusted
    reason: str
    # The provider refused this object to the credentials (they work elsewhere): the lane
    # is blocked `access_denied`, which waiting does not mend, not `observation_incomplete`.
    access_denied: bool = False


@dataclass
class Observation:
    """One kind's snapshot for one pass: what its diff needs, by lane key."""

    lanes: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    problems: list[ObservationProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Which refs each lane's diff read, so a plan for some lanes of a shared observation
    # carries (and is checked against) only theirs. Filled by `fingerprint`.
    refs_of_lane: dict[str, set[str]] = field(default_factory=dict)
    # What the kind saw of objects it owns that people should see without asking the
    # provider (a runner online and busy on GitHub): the engine records them after the
    # survey. Only what differs from the owned facts, so a quiet pass writes nothing.
    seen_facts: list[Facts] = field(default_factory=list)

    def fingerprint(self, lane: str, ref: str, value: str) -> None:
        """Record what `lane`'s diff read of `ref` (refs may be shared between lanes)."""
        self.fingerprints[ref] = value
        self.refs_of_lane.setdefault(lane, set()).add(ref)

    def fingerprints_of(self, lanes: Collection[str]) -> dict[str, str]:
        if not self.refs_of_lane:  # a kind that does not say: every ref, to be safe
            return dict(self.fingerprints)
        refs = set().union(*(self.refs_of_lane.get(lane, set()) for lane in lanes))
        return {ref: self.fingerprints[ref] for ref in refs}


class LanePolicy(Protocol):
    """What the engine asks of a lane before it plans and applies."""

    @property
    def generation(self) -> int | None:
        """The desired generation the lane derives from; None when no longer desired."""
        ...

    @property
    def protect(self) -> bool:
        """Never delete the lane's objects (kept in the ownership registry)."""
        ...

    @property
    def requires_reason(self) -> bool:
        """An apply by an operator or a workflow must give a reason (a scheduled pass
        names itself)."""
        ...

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        """None when `trigger` may run `action` without an operator; else why not, saying
        what setting would allow it. Not asked for `Trigger.operator`."""
        ...


@dataclass(frozen=True)
class PreflightFailure:
    """Why a kind's providers cannot be used. `credentials_refused`: the provider refused
    the credentials (401, 403), which waiting does not mend; anything else may pass."""

    message: str
    credentials_refused: bool = False

    @property
    def blocker_type(self) -> BlockerType:
        if self.credentials_refused:
            return BlockerType.credentials_refused
        return BlockerType.preflight_failed


def preflight_failure(result: str | PreflightFailure | None) -> PreflightFailure | None:
    """A kind's preflight answer as a failure; a plain string is one time may mend."""
    if result is None or isinstance(result, PreflightFailure):
        return result
    return PreflightFailure(result)


class ActionExecutor(Protocol):
    async def execute(self, action: Action) -> Outcome:
        """Run one action. May raise `ActionFailed` (or anything: the engine turns it into
        `Failed`); side effects live here and in the kind's observer reads only."""
        ...


@runtime_checkable
class AdmittingExecutor(Protocol):
    """An executor whose actions may have to wait their turn (a deploy for a build slot)."""

    def admission(self, action: Action) -> AbstractAsyncContextManager[Any] | None:
        """What `action` waits for before it starts, held while it runs; None: nothing. The
        engine enters it before recording the action's intent, so an intent says the action
        was under way, never that it was still waiting its turn in this process."""
        ...


def admission_of(
    executor: ActionExecutor, action: Action
) -> AbstractAsyncContextManager[Any] | None:
    """The turn `action` waits for in `executor`; None: it starts at once."""
    return executor.admission(action) if isinstance(executor, AdmittingExecutor) else None


class LaneKind(Protocol):
    """A kind of lane, built once per pass from the desired fleet and the ownership registry."""

    name: str
    ops: Mapping[str, OpSpec]
    guard: BlastRadiusGuard
    # The blocker reasons its diff raises beyond the engine's own (`plans.BlockerType`),
    # each saying whether time mends it (the loop retries) or an operator must (it does not)
    reasons: Mapping[str, BlockerReason]

    def lanes(self) -> list[str]:
        """Lane keys: desired lanes, plus lanes of this kind that still own objects but are
        no longer desired."""
        ...

    def policy(self, lane: str) -> LanePolicy: ...

    async def preflight(self) -> str | PreflightFailure | None:
        """None when the kind's providers answer with working credentials, else why not (a
        `PreflightFailure` says when the credentials themselves were refused)."""
        ...

    async def observe(self, lanes: Sequence[str]) -> Observation: ...

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        """Pure: desired against observed."""
        ...

    def executor(self, runtime: Runtime) -> ActionExecutor:
        """One executor per apply, shared by the kind's lanes in it."""
        ...


@dataclass(frozen=True)
class AdoptionPreview:
    """What adopting an unowned outside object into a lane means: the claim to record and
    what the next plan would change once the object is owned."""

    lane: str
    claim: Claim
    diff: LaneDiff

    @property
    def would_change(self) -> list[str]:
        return [f"{a.op} {a.target}" for a in self.diff.actions]


@runtime_checkable
class AdoptingKind(Protocol):
    """A kind that can take an existing, unowned object into one of its lanes."""

    name: str

    async def preview_adoption(
        self, lane: str, object_type: str, object_id: str
    ) -> AdoptionPreview: ...


@runtime_checkable
class RemarkingKind(Protocol):
    """A kind with something to say about a plan as a whole, beyond each lane's diff (a
    product lane deleted and another created that look like a rename)."""

    name: str

    def plan_notes(self, actions: Sequence[Action]) -> list[str]:
        """Pure: notes on the plan's actions for this kind's lanes (reported, never acted on)."""
        ...


@dataclass
class Discovery:
    """What a kind found outside Setpoint that belongs in desired state (preview anchors
    from open pull requests). The engine stores the documents and audits them; a kind never
    writes records itself."""

    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # sources that could not be read


@runtime_checkable
class DiscoveringKind(Protocol):
    """A kind whose desired state is partly found rather than declared."""

    name: str

    async def discover(self) -> Discovery: ...


@dataclass(frozen=True)
class LaneNews:
    """What an apply (or a pass) did to one lane, for a kind to tell the people who care (a
    PR comment). `outcome` "applying" is sent when the lane's actions start; the others
    when they end (applied, apply_failed, waiting) or when a pass held the lane's plan
    (blocked, awaiting_operator)."""

    lane: str
    outcome: LaneOutcome
    plan_id: str
    detail: str


@dataclass(frozen=True)
class Feedback:
    """One delivery a kind wants made about a lane. Deliveries of one `channel` (a pull
    request) are sent one at a time, in the order they were made. `payload` is JSON with no
    secret in it: the engine records it as what was sent."""

    lane: str
    channel: str
    payload: dict[str, Any]


@runtime_checkable
class NoticingKind(Protocol):
    """A kind that tells some of its lanes' news to the operator's sinks in its own words
    (`core/notices.py`): a Stalled lane, a removed one. Without it, the engine's words."""

    name: str
    notices: LaneNotices


@runtime_checkable
class AnnouncingKind(Protocol):
    """A kind that reports what happened to its lanes outside Setpoint. The engine records
    each `Feedback` the kind makes of the news (the apply that caused it, at its start and
    its end), and sends it through `deliver`, trying again on its own backoff when the
    failure is transient; a delivery never fails or holds up the lane it is about."""

    name: str

    def feedback(self, news: Sequence[LaneNews]) -> list[Feedback]:
        """Pure: what to deliver about `news` (none: nothing to tell)."""
        ...

    async def deliver(self, feedback: Feedback) -> dict[str, Any]:
        """Send one delivery; the answer to record (no secrets). Raises
        `FeedbackNotDelivered` saying whether trying again may help. Must be safe to call
        again for a delivery whose earlier try may have landed."""
        ...


@dataclass(frozen=True)
class HealthWatch:
    """How a converged lane's health is watched: checked again every `interval` seconds
    while it runs what `basis` names (a verdict about another configuration is not about
    this one, so a new deploy starts its watch afresh)."""

    interval: float
    basis: str


@dataclass(frozen=True)
class HealthVerdict:
    """One health check's answer: `check` names what answered (a URL without credentials),
    `reason` says why it failed (or "ok")."""

    ok: bool
    check: str
    status: int | None
    reason: str


@runtime_checkable
class WatchingKind(Protocol):
    """A kind whose converged lanes are checked again on a schedule. The engine asks which
    lanes are watched and how often, runs `check_health` when a lane's last verdict is due,
    records the verdict (`records/lane_health`) and shows a failing lane Degraded until a
    check passes; a check never changes anything outside."""

    name: str

    def health_watch(self, lane: str) -> HealthWatch | None:
        """None: the lane is not watched now (no checks, or not deployed and verified)."""
        ...

    async def check_health(self, runtime: Runtime, lane: str) -> HealthVerdict:
        """One request per check; a failure is a verdict, never an exception."""
        ...


@dataclass(frozen=True)
class LaneRequest:
    """What a workflow asked of one lane, beyond "reconcile it": `params` from its request
    (a preview's `sha`, the head whose image CI just built)."""

    lane: str
    params: Mapping[str, str]


@runtime_checkable
class RequestableKind(Protocol):
    """A kind whose lanes take what a workflow's request says. The engine stores the
    documents returned (audited, with the request's operation) before the lane is queued."""

    name: str

    def accept_request(self, request: LaneRequest) -> list[Document]:
        """Pure: the desired-state documents the request changes (none: nothing to record).
        Raises `RequestRefused` saying why, in one line, when the lane cannot take it."""
        ...


@runtime_checkable
class EventKind(Protocol):
    """A kind whose lanes a provider's events concern (a pull request's preview). The
    engine queues those lanes and lets the kind look (`discover`) before they are worked:
    an event says where to look, never what is true."""

    name: str

    def lanes_for_event(self, event: str, payload: Mapping[str, Any]) -> list[str]:
        """Pure: the lanes `event` may concern (none: it concerns none of this kind's)."""
        ...


@dataclass(frozen=True)
class GoneCheck:
    """Whether one owned object is confirmed gone: its provider answered "not found" when it
    was read by id. `reason` says why not when it is not (it exists, or the read failed)."""

    ref: ObjectRef
    gone: bool
    reason: str = ""


@runtime_checkable
class ForgettingKind(Protocol):
    """A kind that can confirm its owned objects are gone from their provider, so that an
    operator may forget a lane whose objects were lost outside Setpoint (`setpoint forget`).
    Only a "not found" for a read by id counts as gone; a failed read never does."""

    name: str

    async def preflight(self) -> str | PreflightFailure | None: ...

    async def confirm_gone(self, owned: Sequence[Owned]) -> list[GoneCheck]:
        """One check per owned object, each read by id."""
        ...


@dataclass(frozen=True)
class GoodState:
    """What a converged lane runs while its health checks pass: kept per desired generation
    (`records/known_good`) so the lane can be brought back to it, or its image promoted."""

    running: str | None  # what the provider says runs: an image reference (a digest if pinned)
    verdict: Mapping[str, Any]  # the health verdict that made it good: {"ok", "checks", ...}
    restore: Mapping[str, Any]  # the kind's own: what `restore` needs to write the lane back


@dataclass(frozen=True)
class PromotionGate:
    """A check that must pass before anything is promoted into a lane: an HTTP check (run
    by the runtime's SSRF-safe probe) or an operator's command (argv, no shell)."""

    url: str | None = None
    expect_status: int = 200
    command: tuple[str, ...] = ()
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Promotion:
    """The desired document that gives `lane` the promoted image, and its product's gate."""

    document: Document
    gate: PromotionGate | None


@runtime_checkable
class RestoringKind(Protocol):
    """A kind whose lanes remember their known-good states and can be brought back to one
    (`setpoint rollback`, `onFailedHealth: rollback`) or be given another lane's verified
    image (`setpoint promote`). Every method is pure; the engine stores and audits."""

    name: str

    def good_state(self, lane: str, observation: Observation) -> GoodState | None:
        """What the lane runs when it is deployed at its desired configuration and its
        health checks passed; None otherwise."""
        ...

    def rollback_due(self, lane: str, observation: Observation) -> Mapping[str, Any] | None:
        """The failed health verdict of the lane's newest deploy, when the lane's policy
        rolls back on failed health (`onFailedHealth: rollback`); None otherwise."""
        ...

    def restore(self, lane: str, restore: Mapping[str, Any]) -> Document:
        """The desired document that brings `lane` back to a known-good state's `restore`
        (the lane's policy fields stay as they are now: a rollback never loosens a guard)."""
        ...

    def promotion(self, lane: str, image: str) -> Promotion:
        """The desired document that runs `image` on `lane`; raises PromotionRefused when
        the lane cannot take an image."""
        ...

    async def probe_gate(self, runtime: Runtime, gate: PromotionGate) -> HealthResult:
        """The answer of the gate's URL, through the same SSRF-safe probe the kind verifies
        its deploys with (its one side effect, run by `core/promotion` only)."""
        ...


class KindFactory(Protocol):
    """Builds the kinds of one pass; the CLI passes `reconciler.kinds.all_kinds`, tests
    may pass their own (kopf's `registry=`)."""

    def __call__(
        self, runtime: Runtime, fleet: DesiredFleet, owned: OwnershipSnapshot
    ) -> list[LaneKind]: ...


class RecordsListing(Protocol):
    """A kind's rows read from the records alone: the desired fleet, the ownership snapshot
    and the time. Pure; asks no provider (the review pages read nothing else)."""

    def __call__(
        self, fleet: DesiredFleet, owned: OwnershipSnapshot, now: datetime
    ) -> list[dict[str, Any]]: ...


class ProvidersListing(Protocol):
    """A kind's rows as its providers answer now (reads only), from the kind built for a
    pass: for a CLI command that shows what is out there, managed or not."""

    async def __call__(self, kind: LaneKind) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class KindListing:
    """What a kind shows people beyond its lanes' status, so the CLI and the review pages
    ask the kind instead of reaching into it: `plural` names its command (`setpoint
    previews list`) and its page (/previews). Rows are JSON-able, keyed by the kind's own
    words. A kind with no `from_records` is shown on its page as its lanes (status and
    owned objects); one with no `from_providers` lists from the records in the CLI too."""

    kind: str
    plural: str
    from_records: RecordsListing | None = None
    from_providers: ProvidersListing | None = None
