"""Feedback on the pull request: one marker comment, and a GitHub deployment with a status.

The comment says where the preview is, which image and head it runs, and what the last pass
did; it is rewritten only when that changes (`upsert_marker_comment` leaves an equal body
alone). A deployment status is posted when the preview was applied (success or failure) and
when it was torn down (inactive), so the PR shows the link while there is one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from providers.github.client import GitHubClient
from providers.github.errors import GitHubError
from providers.github.models import DeploymentState
from reconciler.kinds.base import LaneNews
from reconciler.kinds.preview.lanes import AnchorView
from reconciler.kinds.product.lanes import ProductLane

log = logging.getLogger("setpoint.previews")


def marker(lane: str) -> str:
    return f"<!-- setpoint:{lane} -->"


@dataclass
class PreviewFeedback:
    github: GitHubClient
    # Where operators reach `setpoint serve`: the comment then links to the plan's review
    # page (`/plans/{id}`, the address reconciler/web keeps stable for exactly this).
    public_url: str | None = None

    async def tell(self, view: AnchorView, lane: ProductLane | None, news: LaneNews) -> None:
        owner, repo = view.spec.repository.split("/", 1)
        url = _url(lane)
        await self.github.upsert_marker_comment(
            owner,
            repo,
            view.spec.number,
            marker(view.lane),
            _body(view, lane, news, url, plan_ref(news.plan_id, self.public_url)),
        )
        state = _deployment_state(news, lane)
        if state is None:
            return
        deployment = await self.github.create_deployment(
            owner,
            repo,
            view.spec.head_sha,
            f"preview/{view.lane.split('/', 1)[1]}",
            description=f"Setpoint {view.lane}",
        )
        await self.github.create_deployment_status(
            owner, repo, deployment.id, state, environment_url=url, description=news.detail
        )


async def announce_all(
    feedback: PreviewFeedback,
    views: dict[str, AnchorView],
    lanes: dict[str, ProductLane],
    news: list[LaneNews],
) -> list[str]:
    problems = []
    for item in news:
        view = views.get(item.lane)
        if view is None:
            continue
        try:
            await feedback.tell(view, lanes.get(item.lane), item)
        except GitHubError as exc:  # feedback is best effort; the lane itself is fine
            log.warning("feedback on %s failed: %s", item.lane, exc)
            problems.append(f"{item.lane}: feedback on PR #{view.spec.number} failed: {exc}")
    return problems


def _url(lane: ProductLane | None) -> str | None:
    if lane is None or not lane.domains:
        return None
    domain = lane.domains[0]
    return f"{'https' if domain.https else 'http'}://{domain.host}{domain.path}"


def _deployment_state(news: LaneNews, lane: ProductLane | None) -> DeploymentState | None:
    if news.outcome == "applied":
        return "success" if lane is not None else "inactive"  # no lane left: torn down
    if news.outcome == "apply_failed":
        return "failure"
    return None


def plan_ref(plan_id: str, public_url: str | None) -> str:
    """The plan as the comment names it: a link to its review page when there is one."""
    if not plan_id:
        return "`-`"
    if public_url is None:
        return f"`{plan_id}`"
    return f"[`{plan_id}`]({public_url.rstrip('/')}/plans/{quote(plan_id)})"


def _body(
    view: AnchorView, lane: ProductLane | None, news: LaneNews, url: str | None, plan: str
) -> str:
    if lane is None:
        return (
            f"**Setpoint preview** `{view.lane}`: torn down ({view.detail}).\n"
            f"- Last plan: {plan}, {news.outcome}: {news.detail}"
        )
    lines = [
        f"**Setpoint preview** `{view.lane}`: {news.outcome.replace('_', ' ')}",
        f"- URL: {url or 'no domain (the policy has no domain template)'}",
        f"- Image: `{lane.image or lane.service_name}`",
        f"- Head: `{view.spec.head_sha[:7]}`",
        f"- Health checks: {len(lane.health_checks)} (verified on every deploy)",
        f"- Last plan: {plan}, {news.detail}",
    ]
    return "\n".join(lines)
