"""The preview kind: product lanes derived from anchors, on the product kind's parts.

Everything that touches Dokploy (observe, diff, execute, forget) is the product kind's
parts (`product/parts.py`), which this kind is built on, not inherited from: it says which
lanes are desired (`lanes.preview_set`), what a scheduled pass may do to them
(`PreviewLanePolicy`), and how anchors are found (`discovery.AnchorDiscovery`). Its objects
are owned under its own name, and counted against its own blast-radius guard.

Hooks it offers beyond the required contract, each declared below: discovery
(`DiscoveringKind`), feedback (`AnnouncingKind`), requests (`RequestableKind`), events
(`EventKind`), forgetting (`ForgettingKind`) and health watching (`WatchingKind`). Not adoption: a preview's service is made
by Setpoint for one pull request and torn down when it closes, so taking an existing
service into it would hand that service's life to a pull request nobody asked about; an
operator who wants to keep such a service adopts it into a product lane. Not the product's
plan notes either: previews come and go with pull requests, so one closing while another
opens is no rename.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desired_state.document import Document
from desired_state.secret_sources import SecretSources
from providers.dokploy.client import DokployClient
from providers.github.client import GitHubClient
from reconciler.core.inventory import Owned, OwnershipSnapshot
from reconciler.core.notices import LaneNotices, Notice
from reconciler.core.plans import BlastRadiusGuard
from reconciler.core.reasons import BlockerReason
from reconciler.errors import FeedbackNotDelivered, RequestRefused, UnknownLane
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import (
    Discovery,
    Feedback,
    GoneCheck,
    HealthVerdict,
    HealthWatch,
    LaneDiff,
    LaneNews,
    LaneRequest,
    Observation,
    OpSpec,
    PreflightFailure,
)
from reconciler.kinds.github_access import github_preflight
from reconciler.kinds.preview.discovery import AnchorDiscovery, anchor_document
from reconciler.kinds.preview.feedback import deliver_feedback, feedback_of
from reconciler.kinds.preview.lanes import (
    KIND,
    AnchorState,
    PreviewSet,
    preview_set,
    pull_request_lanes,
    running_shas,
)
from reconciler.kinds.preview.policy import PreviewLanePolicy
from reconciler.kinds.product.execute import ProductExecutor
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import ServiceFacts, owned_service
from reconciler.kinds.product.ops import PRODUCT_OPS
from reconciler.kinds.product.parts import ProductParts
from reconciler.kinds.product.reasons import PRODUCT_REASONS
from reconciler.kinds.product.watch import check_lane_health, health_watch
from reconciler.runtime import Runtime
from reconciler.secret_sources import default_sources
from reconciler.secret_values import StoreReader

if TYPE_CHECKING:
    from collections.abc import Sequence

    from providers.github.pulls import PullsApi


PREVIEW_NOTICES = LaneNotices(removed=Notice("preview_torn_down", "preview torn down"))


@dataclass
class PreviewKind:
    fleet: DesiredFleet
    owned: OwnershipSnapshot
    client: DokployClient
    salt: str
    guard: BlastRadiusGuard = field(default_factory=BlastRadiusGuard)
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    sources: SecretSources = field(default_factory=default_sources)
    github: PullsApi | None = None
    now: float = field(kw_only=True)  # the runtime's clock at the pass: no default
    # The runtime's clock, for what happens after the pass began (a delivery's rate limit).
    clock: Callable[[], float] = field(kw_only=True)
    public_url: str | None = None  # PR comments link to the plan's review page under it
    name: str = KIND
    # The product's operations and reasons: a preview's lanes are planned by its parts.
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: PRODUCT_OPS)
    reasons: Mapping[str, BlockerReason] = field(default_factory=lambda: PRODUCT_REASONS)
    # A preview's lane removed by an applied plan (its PR closed, its anchor deleted, a
    # policy switch) is told: a person may still have been looking at it.
    notices: LaneNotices = PREVIEW_NOTICES
    # Seconds between health checks of a converged preview that names no interval of its own.
    health_interval: float = 300.0

    def __post_init__(self) -> None:
        self.previews: PreviewSet = preview_set(self.fleet, self.now, running_shas(self.owned))
        self.parts = ProductParts(
            kind=self.name,
            wanted=list(self.previews.lanes.values()),
            owned=self.owned,
            client=self.client,
            salt=self.salt,
            environ=self.environ,
            store=self.store,
            sources=self.sources,
            now=self.now,
        )
        self.desired: dict[str, ProductLane] = self.parts.desired

    def lanes(self) -> list[str]:
        return self.parts.lanes()

    def policy(self, lane: str) -> PreviewLanePolicy:
        desired = self.desired.get(lane)
        teardown = self.previews.teardown.get(lane, "manual")  # product gone: for review
        return PreviewLanePolicy(
            generation=desired.generation if desired else None, teardown=teardown
        )

    async def preflight(self) -> PreflightFailure | None:
        """Dokploy's key, then GitHub's token: a preview needs both."""
        return await self.parts.preflight() or await github_preflight(self.github)

    async def observe(self, lanes: Sequence[str]) -> Observation:
        observation = await self.parts.observe(lanes)
        observation.notes.extend(self.previews.notes())
        return observation

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        return self.parts.diff(lane, observation)

    def executor(self, runtime: Runtime) -> ProductExecutor:
        return self.parts.executor(runtime)

    async def confirm_gone(self, owned: Sequence[Owned]) -> list[GoneCheck]:
        return await self.parts.confirm_gone(owned)

    def health_watch(self, lane: str) -> HealthWatch | None:
        """A running preview is watched as its product's lanes are (`kinds/product/watch`)."""
        owned = owned_service(self.owned.for_lane(lane))
        return health_watch(self.desired.get(lane), ServiceFacts.of(owned), self.health_interval)

    async def check_health(self, runtime: Runtime, lane: str) -> HealthVerdict:
        return await check_lane_health(runtime, self.desired[lane])

    def feedback(self, news: Sequence[LaneNews]) -> list[Feedback]:
        if not isinstance(self.github, GitHubClient):
            return []  # a provider that cannot comment (a test double): nothing to tell
        views = {view.lane: view for view in self.previews.anchors}
        return [
            feedback_of(views[n.lane], self.previews.lanes.get(n.lane), n, self.public_url)
            for n in news
            if n.lane in views
        ]

    async def deliver(self, feedback: Feedback) -> dict[str, Any]:
        if not isinstance(self.github, GitHubClient):
            raise FeedbackNotDelivered("no GitHub client to deliver with", transient=False)
        return await deliver_feedback(self.github, feedback.payload, self.clock)

    async def discover(self) -> Discovery:
        if self.github is None:
            return Discovery(problems=["no GitHub provider is configured"])
        return await AnchorDiscovery(
            self.github, self.fleet, self.owned, self.now, self.previews
        ).run()

    def accept_request(self, request: LaneRequest) -> list[Document]:
        """A workflow asks for a preview at the head it built. Under `deploy: on-request`
        that head becomes the one the preview runs; only the PR's current head is taken,
        so a slow build of an older commit never rolls a preview back."""
        view = next((v for v in self.previews.anchors if v.lane == request.lane), None)
        if view is None:
            raise UnknownLane(request.lane)
        sha = request.params.get("sha")
        if not view.on_request:
            return []  # every head deploys at the next pass: the request only reconciles
        if view.state not in (AnchorState.live, AnchorState.awaiting_request):
            raise RequestRefused(f"{request.lane}: PR #{view.spec.number} is {view.state}")
        if sha is None:
            raise RequestRefused(
                f"{request.lane} deploys on request: say which head CI built (`sha`)"
            )
        if sha != view.spec.head_sha:
            raise RequestRefused(
                f"{request.lane}: PR #{view.spec.number}'s head is {view.spec.head_sha[:7]}, "
                f"not {sha[:7]}; the workflow for that head will ask for it"
            )
        if view.spec.requested_sha == sha:
            return []
        spec = view.spec.model_copy(update={"requested_sha": sha})
        return [anchor_document(view.product, spec)]

    def lanes_for_event(self, event: str, payload: Mapping[str, Any]) -> list[str]:
        if event != "pull_request":
            return []
        repository = payload.get("repository")
        pull = payload.get("pull_request")
        name = repository.get("full_name") if isinstance(repository, dict) else None
        number = pull.get("number") if isinstance(pull, dict) else payload.get("number")
        if not isinstance(name, str) or not isinstance(number, int):
            return []
        return pull_request_lanes(self.fleet, name, number)
