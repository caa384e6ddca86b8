"""`PreviewAnchor`: one pull request that should have (or had) a preview.

Anchors are written by Setpoint, not by hand: by discovery during scheduled passes (open
pull requests of a product's repository) and, once the service runs, by GitHub webhooks.
The preview kind derives a preview lane from each live anchor and its product's policy.
Times are seconds since the epoch (UTC), so the stored spec reads back exactly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from desired_state.base import SpecModel
from desired_state.names import Name, Repository

AnchorSource = Literal["discovery", "webhook", "operator"]


class PreviewAnchorSpec(SpecModel):
    product: Name
    repository: Repository
    number: int = Field(ge=1)
    head_sha: str = Field(pattern=r"^[0-9a-f]{40}$")
    labels: list[str] = Field(default_factory=list)
    state: Literal["open", "closed"] = "open"
    opened_at: int = Field(ge=0, description="when the pull request was opened")
    # When the head SHA last changed (a push), for the policy's TTL; None: since opened_at.
    head_at: int | None = Field(default=None, ge=0)
    # When the PR stopped qualifying (closed, or lost the policy's label): the grace period
    # counts from here. None while it qualifies.
    ended_at: int | None = Field(default=None, ge=0)
    # Set once the preview's teardown was verified: nothing of it is left in Dokploy.
    gone: bool = False
    source: AnchorSource = "discovery"
    # From a fork (allowed by the policy): its preview gets no secrets.
    fork: bool = False
    # Where a fork's head lives (`owner/repo`), so the policy's `allowForks` can be read
    # against its owner; None for the product's own branches.
    head_repository: Repository | None = None
    # Why discovery gives this pull request no preview (shown in `previews list`): a fork
    # from an owner `allowForks` does not list. None: it has, or may have, one.
    refused: Literal["fork_not_allowed"] | None = None
    # The head a workflow last asked to deploy (policy `deploy: on-request`): the preview
    # runs this SHA's image, never one CI has not built yet.
    requested_sha: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")

    @model_validator(mode="after")
    def _gone_only_after_end(self) -> PreviewAnchorSpec:
        if self.gone and self.ended_at is None:
            raise ValueError("an anchor is gone only after its pull request stopped qualifying")
        return self


def anchor_name(product: str, number: int) -> str:
    """The anchor's object name: one per product and pull request."""
    return f"{product}-pr-{number}"
