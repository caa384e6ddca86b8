"""The preview kind: product lanes derived from anchors, on the product kind's machinery.

Everything that touches Dokploy (observe, diff, execute, adopt) is the product kind's; this
kind only says which lanes are desired (`lanes.preview_set`), what a scheduled pass may do
to them (`PreviewLanePolicy`), and how anchors are found (`discovery.AnchorDiscovery`).
Its objects are owned under its own name, and counted against its own blast-radius guard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from providers.github.client import GitHubClient
from reconciler.kinds.base import Discovery, LaneNews, Observation
from reconciler.kinds.preview.discovery import AnchorDiscovery
from reconciler.kinds.preview.feedback import PreviewFeedback, announce_all
from reconciler.kinds.preview.lanes import KIND, PreviewSet, preview_set
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
        self.previews: PreviewSet = preview_set(self.fleet, self.now)
        return list(self.previews.lanes.values())

    def policy(self, lane: str) -> PreviewLanePolicy:
        desired = self.desired.get(lane)
        teardown = self.previews.teardown.get(lane, "manual")  # product gone: for review
        return PreviewLanePolicy(
            generation=desired.generation if desired else None, teardown=teardown
        )

    async def observe(self, lanes: Sequence[str]) -> Observation:
        observation = await super().observe(lanes)
        observation.notes.extend(self.previews.notes())
        return observation

    async def announce(self, news: Sequence[LaneNews]) -> list[str]:
        if not isinstance(self.github, GitHubClient):
            return []  # a provider that cannot comment (a test double): nothing to tell
        views = {view.lane: view for view in self.previews.anchors}
        mine = [n for n in news if n.lane in views]
        feedback = PreviewFeedback(self.github, self.public_url)
        return await announce_all(feedback, views, self.previews.lanes, mine)

    async def discover(self) -> Discovery:
        if self.github is None:
            return Discovery(problems=["no GitHub provider is configured"])
        return await AnchorDiscovery(
            self.github, self.fleet, self.owned, self.now, self.previews
        ).run()
