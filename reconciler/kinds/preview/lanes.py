"""Preview lanes from anchors and policies: pure, so `previews list` and the kind agree.

A preview lane is a product lane whose desired state comes from its anchor (PR number,
head SHA) and its product's preview policy (slug, image and domain templates, the template
lane for everything else). The product kind's observer, diff and executor serve it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from desired_state.document import Document
from desired_state.preview_anchor import PreviewAnchorSpec
from desired_state.product import PreviewPolicy, ProductSpec
from desired_state.templates import render
from providers.github.models import same_repository
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.plans import lane_key
from reconciler.fleet import DesiredFleet
from reconciler.kinds.product.identity import with_identity
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane, lanes_of_product
from reconciler.kinds.product.observed import ServiceFacts, owned_service
from reconciler.kinds.product.policy import ApplyPolicy

KIND = "preview"
# Dokploy derives container and Swarm service names from the service name: keep to DNS
# label characters and well under Docker's 63-character limit once Dokploy adds its suffix.
SAFE_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_SERVICE_NAME = 48
PREVIEW_IMAGE_VARIABLE = "SETPOINT_PREVIEW_IMAGE"


class AnchorState(StrEnum):
    live = "live"  # has a preview lane
    waiting = "waiting"  # qualifies, but the product is at its preview limit
    ending = "ending"  # stopped qualifying; kept until the grace period is over
    ended = "ended"  # grace period over: its lane is torn down
    gone = "gone"  # teardown verified
    refused = "refused"  # its slug renders to a name Dokploy cannot take
    # `deploy: on-request`, and no workflow has asked for any head of this PR yet
    awaiting_request = "awaiting_request"


@dataclass(frozen=True)
class AnchorView:
    product: str
    name: str
    spec: PreviewAnchorSpec
    state: AnchorState
    lane: str
    detail: str
    # The head the preview runs: the PR's head, or under `deploy: on-request` the last head
    # a workflow asked for (None: none asked yet).
    deploy_sha: str | None = None
    on_request: bool = False  # its product's policy says `deploy: on-request`
    # The commit its service runs, as its last deploy recorded it (None: nothing deployed,
    # or deployed before Setpoint recorded commits).
    running_sha: str | None = None


@dataclass
class PreviewSet:
    lanes: dict[str, ProductLane] = field(default_factory=dict)
    teardown: dict[str, str] = field(default_factory=dict)  # lane -> "auto" | "manual"
    anchors: list[AnchorView] = field(default_factory=list)

    def notes(self) -> list[str]:
        return [
            f"{a.lane}: {a.detail}"
            for a in self.anchors
            if a.state in (AnchorState.waiting, AnchorState.refused, AnchorState.awaiting_request)
            or a.deploy_sha not in (None, a.spec.head_sha)
        ]


def preview_lane_key(product: str, slug: str) -> str:
    return lane_key(KIND, f"{product}/{slug}")


def pull_request_lanes(fleet: DesiredFleet, repository: str, number: int) -> list[str]:
    """The preview lane of pull request `number` in each product of `repository` that has
    previews enabled (whether the PR qualifies is for discovery to find out)."""
    lanes = []
    for product in fleet.of_kind("Product"):
        spec = product.spec
        if not isinstance(spec, ProductSpec) or not spec.preview.enabled:
            continue
        if same_repository(spec.repository, repository):
            slug = render(spec.preview.slug, {"number": number, "product": product.name})
            lanes.append(preview_lane_key(product.name, slug))
    return lanes


def running_shas(owned: OwnershipSnapshot) -> dict[str, str]:
    """The commit each preview lane's service runs, from what its last deploy recorded."""
    running = {}
    for lane in owned.lanes_of_kind(KIND):
        sha = ServiceFacts.of(owned_service(owned.for_lane(lane))).deployed_sha
        if sha is not None:
            running[lane] = sha
    return running


def preview_set(
    fleet: DesiredFleet, now: float, running: Mapping[str, str] | None = None
) -> PreviewSet:
    """Every product's previews at `now` (seconds since the epoch). `running`: the commit
    each preview lane's service runs (`running_shas`); a running preview is never dropped
    for want of a requested head."""
    result = PreviewSet()
    running = running or {}
    anchors_of: dict[str, list[Document]] = {}
    for document in fleet.of_kind("PreviewAnchor"):
        assert isinstance(document.spec, PreviewAnchorSpec)
        anchors_of.setdefault(document.spec.product, []).append(document)
    for product in fleet.of_kind("Product"):
        assert isinstance(product.spec, ProductSpec)
        if product.spec.preview.enabled:
            found = anchors_of.get(product.name, [])
            _product_previews(fleet, product, found, (now, running), result)
    return result


def _product_previews(
    fleet: DesiredFleet,
    product: Document,
    anchors: list[Document],
    moment: tuple[float, Mapping[str, str]],  # now, and what each preview lane runs
    result: PreviewSet,
) -> None:
    spec = product.spec
    assert isinstance(spec, ProductSpec)
    policy = spec.preview
    template = next(
        (
            lane
            for lane in lanes_of_product(product, fleet.generations[product.key])
            if lane.lane_name == policy.template_lane
        ),
        None,
    )
    if template is None:
        return  # validation requires the template lane; nothing to derive from
    places = 0
    for anchor in sorted(anchors, key=lambda a: _spec(a).number):  # oldest PRs first
        view = _anchor_view(product.name, anchor, policy, moment)
        generation = fleet.generations[product.key] + fleet.generations[anchor.key]
        if view.state is AnchorState.awaiting_request:
            places += 1  # it keeps its place in line until CI built its first image
        elif view.state in (AnchorState.live, AnchorState.ending):
            if places >= policy.max_active:
                place = places - policy.max_active + 1
                view = replace(
                    view,
                    state=AnchorState.waiting,
                    detail=f"waiting: {policy.max_active} preview(s) active, place {place} in line",
                )
                places += 1
            else:
                places += 1
                _add_lane(result, view, template, policy, generation)
        result.teardown[view.lane] = policy.teardown
        result.anchors.append(view)


def _anchor_view(
    product: str,
    anchor: Document,
    policy: PreviewPolicy,
    moment: tuple[float, Mapping[str, str]],
) -> AnchorView:
    now, running = moment
    spec = _spec(anchor)
    slug = render(policy.slug, {"number": spec.number, "product": product})
    lane = preview_lane_key(product, slug)
    service_name = f"{product}-{slug}"
    if not SAFE_SLUG.match(slug) or len(service_name) > MAX_SERVICE_NAME:
        detail = (
            f"slug {slug!r} renders the service name {service_name!r}, which Dokploy cannot "
            f"take (lowercase letters, digits and '-', at most {MAX_SERVICE_NAME} characters)"
        )
        return AnchorView(product, anchor.name, spec, AnchorState.refused, lane, detail)
    if spec.refused is not None:
        return _refused(product, anchor.name, spec, lane)
    state, detail = _lifecycle(spec, policy, now)
    view = AnchorView(
        product, anchor.name, spec, state, lane, detail, running_sha=running.get(lane)
    )
    if policy.deploy == "on-push":
        return _on_push(view)
    return _on_request(replace(view, on_request=True))


def _refused(product: str, name: str, spec: PreviewAnchorSpec, lane: str) -> AnchorView:
    """A pull request discovery found but gives no preview: a fork from an owner the policy
    does not list. Shown, so nobody wonders where its preview is."""
    if spec.ended_at is not None:
        detail = f"PR #{spec.number} ended; it never had a preview"
        return AnchorView(product, name, spec, AnchorState.gone, lane, detail)
    source = spec.head_repository or "a deleted fork"
    detail = (
        f"PR #{spec.number} comes from the fork {source}, whose owner the policy's "
        "allowForks does not list: no preview (a fork runs code nobody here reviewed)"
    )
    return AnchorView(product, name, spec, AnchorState.refused, lane, detail)


def _on_push(view: AnchorView) -> AnchorView:
    """Under `deploy: on-push` the preview runs the PR's head: a new head deploys at once."""
    spec, running = view.spec, view.running_sha
    if view.state is AnchorState.live and running is not None and running != spec.head_sha:
        detail = (
            f"PR #{spec.number} runs {running[:7]}; its head {spec.head_sha[:7]} deploys "
            "at the next pass"
        )
        view = replace(view, detail=detail)
    return replace(view, deploy_sha=spec.head_sha)


def _on_request(view: AnchorView) -> AnchorView:
    """Under `deploy: on-request` the preview runs the last head a workflow asked for. One
    that runs with no head asked for (the policy was switched, the request was lost) keeps
    running what it runs: a missing request never takes a preview down."""
    spec = view.spec
    requested = spec.requested_sha or view.running_sha
    if view.state is AnchorState.ending and requested is None:
        # Nothing was ever deployed: there is nothing to keep through a grace period.
        detail = f"PR #{spec.number} ended before a workflow asked for its preview"
        return replace(view, state=AnchorState.ended, detail=detail)
    if view.state is not AnchorState.live:
        return replace(view, deploy_sha=requested)
    if requested is None:
        detail = (
            f"PR #{spec.number} at {spec.head_sha[:7]} waits for a workflow to request it "
            "(deploy: on-request)"
        )
        return replace(view, state=AnchorState.awaiting_request, detail=detail)
    if requested != spec.head_sha:
        detail = (
            f"PR #{spec.number} runs {requested[:7]}; head {spec.head_sha[:7]} waits for a "
            "workflow to request it (deploy: on-request)"
        )
        return replace(view, detail=detail, deploy_sha=requested)
    return replace(view, deploy_sha=requested)


def _lifecycle(
    spec: PreviewAnchorSpec, policy: PreviewPolicy, now: float
) -> tuple[AnchorState, str]:
    if spec.gone:
        return AnchorState.gone, "torn down"
    ended_at = spec.ended_at
    if ended_at is None and policy.ttl_hours is not None:
        idle_until = (spec.head_at or spec.opened_at) + policy.ttl_hours * 3600
        if now >= idle_until:  # no new commit for the TTL: ends as if closed
            ended_at = idle_until
    if ended_at is None:
        return AnchorState.live, f"PR #{spec.number} at {spec.head_sha[:7]}"
    until = ended_at + policy.grace_period_minutes * 60
    if now < until:
        return AnchorState.ending, f"PR #{spec.number} ended; {kept_until(until, now)}"
    return AnchorState.ended, f"PR #{spec.number} ended; grace period over, torn down"


def kept_until(until: float, now: float) -> str:
    """A grace period's end as people read it: `kept until 2026-03-01 14:05 UTC (29m 54s
    more)`."""
    when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"kept until {when} ({human_duration(until - now)} more)"


def human_duration(seconds: float) -> str:
    """`2d 3h`, `1h 5m`, `29m 54s`, `40s`: the two largest units that are not zero."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count or (unit == "s" and not parts):
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])


def _add_lane(
    result: PreviewSet,
    view: AnchorView,
    template: ProductLane,
    policy: PreviewPolicy,
    generation: int,
) -> None:
    spec, product = view.spec, view.product
    slug = view.lane.split("/", 1)[1]
    sha = view.deploy_sha or spec.head_sha  # an ending preview keeps what it ran
    values: dict[str, str | int] = {
        "number": spec.number,
        "product": product,
        "slug": slug,
        "sha": sha,
        "sha7": sha[:7],
    }
    domains: tuple[DesiredDomain, ...] = ()
    if policy.domain is not None:
        first = template.domains[0] if template.domains else None
        domains = (
            DesiredDomain(
                host=render(policy.domain, values),
                path="/",
                port=first.port if first else 80,
                https=first.https if first else True,
                service=first.service if first else None,
            ),
        )
    image = render(policy.image, values) if policy.image else template.image
    env = dict(template.env)
    if template.compose_file is not None and image is not None:
        # A compose file names its own images: it takes the PR's through this variable
        # (`image: ${SETPOINT_PREVIEW_IMAGE:-ghcr.io/acme/api:main}`).
        env[PREVIEW_IMAGE_VARIABLE] = image
    lane = replace(
        template,
        env=env,
        lane=view.lane,
        lane_name=slug,
        generation=generation,
        service_name=f"{product}-{slug}",
        image=image,
        domains=domains,
        health_checks=tuple(
            replace(c, url=_rehost(c.url, domains[0].host)) for c in template.health_checks
        )
        if domains
        else (),
        replicas=1,
        secrets={} if spec.fork else template.secrets,  # a fork's code never sees them
        apply_policy=ApplyPolicy.auto_safe,
        protect=False,
        prod=False,
        previous_lane=None,  # the template lane's rename is its own
        source_sha=sha,  # a new head deploys, whatever the image tag looks like
    )
    # The template's runtime identity is the template's: a preview reports its own.
    result.lanes[view.lane] = with_identity(lane) if template.identity else lane


def _rehost(url: str, host: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _spec(document: Document) -> PreviewAnchorSpec:
    assert isinstance(document.spec, PreviewAnchorSpec)
    return document.spec
