"""The preview kind: product lanes derived from anchors, on the product kind's machinery.

Everything that touches Dokploy (observe, diff, execute, adopt) is the product kind's; this
kind only says which lanes are desired (`lanes.preview_set`), what a scheduled pass may do
to them (`PreviewLanePolicy`), and how anchors are found (`discovery.AnchorDiscovery`).
Its objects are owned under its own name, and counted against its own blast-radius guard.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desired_state.document import Document
from providers.github.client import GitHubClient
from reconciler.errors import FeedbackNotDelivered, RequestRefused, UnknownLane
from reconciler.kinds.base import (
    Discovery,
    Feedback,
    LaneNews,
    LaneRequest,
    Observation,
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
from reconciler.kinds.product.kind import ProductKind
from reconciler.kinds.product.lanes import ProductLane

if TYPE_CHECKING:
    from collections.abc import Sequence

    from providers.github.pulls import PullsApi


@dataclass
class PreviewKind(ProductKind):
    github: PullsApi | None = None
    now: float = field(default_factory=time.time)
    public_url: str | None = None  # PR comments link to the plan's review page under it
    name: str = KIND

    def desired_lanes(self) -> list[ProductLane]:
        self.previews: PreviewSet = preview_set(self.fleet, self.now, running_shas(self.owned))
        return list(self.previews.lanes.values())

    def policy(self, lane: str) -> PreviewLanePolicy:
        desired = self.desired.get(lane)
        teardown = self.previews.teardown.get(lane, "manual")  # product gone: for review
        return PreviewLanePolicy(
            generation=desired.generation if desired else None, teardown=teardown
        )

    async def preflight(self) -> PreflightFailure | None:
        """Dokploy's key, then GitHub's token: a preview needs both."""
        return await super().preflight() or await github_preflight(self.github)

    async def observe(self, lanes: Sequence[str]) -> Observation:
        observation = await super().observe(lanes)
        observation.notes.extend(self.previews.notes())
        return observation

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
        return await deliver_feedback(self.github, feedback.payload)

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
