"""Find the pull requests that should have previews, and write what changed as anchors.

Fail closed: a pull request is taken as ended only when GitHub says so about that pull
request. One missing from the open list (an empty page, a listing that lies) is read by
number first; a GitHub error leaves every anchor of that product as it was, so an outage
never tears anything down.
"""

from __future__ import annotations

from dataclasses import dataclass

from desired_state.document import API_VERSION, Document
from desired_state.preview_anchor import PreviewAnchorSpec, anchor_name
from desired_state.product import PreviewPolicy, ProductSpec
from providers.github.errors import GitHubError
from providers.github.models import PullRequest, same_repository
from providers.github.pulls import PullsApi
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import Discovery
from reconciler.kinds.preview.lanes import AnchorState, PreviewSet


@dataclass
class AnchorDiscovery:
    github: PullsApi
    fleet: DesiredFleet
    owned: OwnershipSnapshot
    now: float
    previews: PreviewSet  # the kind's view of the same fleet at the same moment

    async def run(self) -> Discovery:
        found = Discovery()
        anchors = self._anchors()
        for product in self.fleet.of_kind("Product"):
            assert isinstance(product.spec, ProductSpec)
            if product.spec.preview.enabled:
                await self._product(product.name, product.spec, anchors, found)
        updated = {document.name for document in found.documents}
        # An anchor just brought back (reopened, pushed) is not marked gone by the old view.
        found.documents.extend(d for d in self._verified_gone() if d.name not in updated)
        return found

    def _anchors(self) -> dict[str, PreviewAnchorSpec]:
        anchors = {}
        for document in self.fleet.of_kind("PreviewAnchor"):
            assert isinstance(document.spec, PreviewAnchorSpec)
            anchors[document.name] = document.spec
        return anchors

    async def _product(
        self,
        product: str,
        spec: ProductSpec,
        anchors: dict[str, PreviewAnchorSpec],
        found: Discovery,
    ) -> None:
        owner, repo = spec.repository.split("/", 1)
        try:
            pulls = await self.github.list_open_pulls(owner, repo)
        except GitHubError as exc:
            found.problems.append(f"{product}: listing pull requests of {spec.repository}: {exc}")
            return
        listed = {pr.number for pr in pulls}
        for pr in pulls:
            before = anchors.get(anchor_name(product, pr.number))
            after = self._from_open(product, spec, pr, before)
            if after is not None and after != before:
                found.documents.append(anchor_document(product, after))
        unlisted = [
            a
            for _, a in sorted(anchors.items())
            if a.product == product and a.ended_at is None and a.number not in listed
        ]
        for anchor in unlisted:  # not read as closed until GitHub says so about it
            await self._confirm_ended(product, anchor, found)

    def _from_open(
        self,
        product: str,
        spec: ProductSpec,
        pr: PullRequest,
        before: PreviewAnchorSpec | None,
    ) -> PreviewAnchorSpec | None:
        fork = not same_repository(pr.head_repo, spec.repository)  # None: a deleted fork
        refused = _refusal(spec.preview, pr, fork)
        if refused is not None and (before is None or before.refused is not None):
            return self._refused(product, spec, pr, before)  # shown, never deployed
        if not _qualifies(spec.preview, pr, fork):
            if before is None or before.ended_at is not None:
                return before  # never had one, or already ending
            return before.model_copy(update={"labels": pr.labels, "ended_at": int(self.now)})
        return PreviewAnchorSpec.model_validate(
            {  # by alias: desired-state models take the camelCase names, as YAML does
                "product": product,
                "repository": spec.repository,
                "number": pr.number,
                "headSha": pr.head_sha,
                "labels": sorted(pr.labels),
                "state": "open",
                "openedAt": before.opened_at if before else int(self.now),
                "headAt": _head_at(before, pr, self.now),
                "source": "discovery",
                "fork": fork,
                "headRepository": pr.head_repo if fork else None,
                "requestedSha": before.requested_sha if before else None,
            }
        )

    def _refused(
        self,
        product: str,
        spec: ProductSpec,
        pr: PullRequest,
        before: PreviewAnchorSpec | None,
    ) -> PreviewAnchorSpec:
        """A fork's pull request that would qualify but for `allowForks`: an anchor that
        says so, so `previews list` shows it refused with the reason."""
        return PreviewAnchorSpec.model_validate(
            {
                "product": product,
                "repository": spec.repository,
                "number": pr.number,
                "headSha": pr.head_sha,
                "labels": sorted(pr.labels),
                "state": "open",
                "openedAt": before.opened_at if before else int(self.now),
                "source": "discovery",
                "fork": True,
                "headRepository": pr.head_repo,
                "refused": "fork_not_allowed",
            }
        )

    async def _confirm_ended(
        self, product: str, anchor: PreviewAnchorSpec, found: Discovery
    ) -> None:
        owner, repo = anchor.repository.split("/", 1)
        try:
            pr = await self.github.get_pull(owner, repo, anchor.number)
        except GitHubError as exc:
            found.problems.append(f"{product}: reading PR #{anchor.number}: {exc}")
            return
        if pr.state == "closed":
            ended = anchor.model_copy(update={"state": "closed", "ended_at": int(self.now)})
            found.documents.append(anchor_document(product, ended))

    def _verified_gone(self) -> list[Document]:
        """Anchors whose grace period is over and whose lane owns nothing any more: the
        teardown was applied and verified, so the anchor is marked gone."""
        gone = []
        for view in self.previews.anchors:
            if view.state is AnchorState.ended and not self.owned.for_lane(view.lane):
                ended = view.spec.ended_at or int(self.now)  # a TTL end was never written
                update = {"gone": True, "ended_at": ended}
                gone.append(anchor_document(view.product, view.spec.model_copy(update=update)))
        return gone


def _head_at(before: PreviewAnchorSpec | None, pr: PullRequest, now: float) -> int:
    """When this head was first seen: kept while the SHA stays, moved by a push."""
    if before is not None and before.head_sha == pr.head_sha:
        return before.head_at if before.head_at is not None else before.opened_at
    return int(now)


def _qualifies(policy: PreviewPolicy, pr: PullRequest, fork: bool) -> bool:
    if _fork_refused(policy, pr, fork):
        return False  # a fork runs code nobody here reviewed: only from named owners
    return _labelled(policy, pr)


def _labelled(policy: PreviewPolicy, pr: PullRequest) -> bool:
    return policy.label is None or policy.label in pr.labels


def _fork_refused(policy: PreviewPolicy, pr: PullRequest, fork: bool) -> bool:
    owner = (pr.head_repo or "/").split("/", 1)[0].lower()
    return fork and owner not in {o.lower() for o in policy.allow_forks}


def _refusal(policy: PreviewPolicy, pr: PullRequest, fork: bool) -> str | None:
    """Why a pull request that carries the policy's label gets no preview, if it does not."""
    if _labelled(policy, pr) and _fork_refused(policy, pr, fork):
        return "fork_not_allowed"
    return None


def anchor_document(product: str, spec: PreviewAnchorSpec) -> Document:
    return Document.model_validate(
        {
            "apiVersion": API_VERSION,
            "kind": "PreviewAnchor",
            "metadata": {"name": anchor_name(product, spec.number)},
            "spec": spec,
        }
    )
