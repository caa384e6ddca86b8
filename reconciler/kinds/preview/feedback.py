"""Feedback on the pull request: one marker comment, and a GitHub deployment with statuses.

The engine asks for feedback when an apply of a preview lane starts and when it ends
(`core/feedback.py`), records it, and sends it through `deliver_feedback`. The comment says
where the preview is, which image and commit it runs, and what the apply did; it is
rewritten in place (`upsert_marker_comment` leaves an equal body alone). The deployment is
made for the commit the apply deploys (one per commit, found again by the lane its payload
names, so a delivery tried twice never makes two): `in_progress` when the deploy starts,
`success` or `failure` with the health result when it ends, and `inactive` when the preview
is torn down. A `success` marks the PR's earlier deployments `inactive` explicitly: GitHub's
`auto_inactive` leaves transient (preview) environments alone, and their URLs are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from providers.github.client import GitHubClient
from providers.github.errors import GitHubError, GitHubRateLimited, GitHubTransientError
from providers.github.models import DeploymentRef, DeploymentState
from reconciler.core.outcomes import LaneOutcome
from reconciler.errors import FeedbackNotDelivered
from reconciler.kinds.base import Feedback, LaneNews
from reconciler.kinds.preview.lanes import AnchorView
from reconciler.kinds.product.lanes import ProductLane

log = logging.getLogger("setpoint.previews")


def marker(lane: str) -> str:
    return f"<!-- setpoint:{lane} -->"


def pull_request_channel(view: AnchorView) -> str:
    """One channel per pull request: its deliveries are sent in order."""
    return f"github:{view.spec.repository.lower()}#{view.spec.number}"


def feedback_of(
    view: AnchorView, lane: ProductLane | None, news: LaneNews, public_url: str | None
) -> Feedback:
    """What to tell PR `view` about `news`, for the commit the preview runs."""
    url = preview_url(lane)
    sha = view.deploy_sha or view.spec.head_sha
    body = _body(view, lane, news, url, plan_ref(news.plan_id, public_url), sha)
    payload: dict[str, Any] = {
        "lane": view.lane,
        "repository": view.spec.repository,
        "number": view.spec.number,
        "sha": sha,
        "marker": marker(view.lane),
        "comment": body,
        "environment": f"preview/{view.lane.split('/', 1)[1]}",
        "deployment_state": _deployment_state(news, lane),
        "environment_url": url,
        "description": news.detail[:140],
        "plan_id": news.plan_id,
        "outcome": news.outcome,
    }
    return Feedback(view.lane, pull_request_channel(view), payload)


async def deliver_feedback(
    github: GitHubClient, payload: dict[str, Any], clock: Callable[[], float]
) -> dict[str, Any]:
    """Send one delivery made by `feedback_of`; the answer to record. Safe to send again:
    the comment is found by its marker, the deployment by its plan. `clock` (the runtime's)
    says how long until a rate limit's reset."""
    owner, repo = str(payload["repository"]).split("/", 1)
    try:
        upsert = await github.upsert_marker_comment(
            owner, repo, int(payload["number"]), str(payload["marker"]), str(payload["comment"])
        )
        answer: dict[str, Any] = {"comment": upsert.action, "comment_id": upsert.comment_id}
        state = payload.get("deployment_state")
        if state is not None:
            answer.update(await _deployment(github, owner, repo, payload, state))
    except GitHubError as exc:
        raise FeedbackNotDelivered(
            f"PR #{payload['number']}: {exc}",
            transient=isinstance(exc, GitHubTransientError | GitHubRateLimited),
            retry_after=_retry_after(exc, clock),
        ) from exc
    return answer


async def _deployment(
    github: GitHubClient, owner: str, repo: str, payload: dict[str, Any], state: DeploymentState
) -> dict[str, Any]:
    environment = str(payload["environment"])
    if state == "inactive":  # torn down: every deployment of the PR loses its link
        return {"inactivated": await _inactivate(github, owner, repo, environment, None)}
    deployment = await _commit_deployment(github, owner, repo, payload)
    await github.create_deployment_status(
        owner,
        repo,
        deployment.id,
        state,
        environment_url=payload.get("environment_url"),
        description=str(payload.get("description") or ""),
    )
    answer: dict[str, Any] = {"deployment_id": deployment.id, "deployment_state": state}
    if state == "success":
        answer["inactivated"] = await _inactivate(github, owner, repo, environment, deployment)
    return answer


async def _commit_deployment(
    github: GitHubClient, owner: str, repo: str, payload: dict[str, Any]
) -> DeploymentRef:
    """The deployment Setpoint made of this commit for this preview, or a new one: one per
    commit, so a later apply of it (a health check that passed late) adds its status there,
    and a try whose answer was lost never creates a second."""
    sha, lane = str(payload["sha"]), str(payload["lane"])
    environment = str(payload["environment"])
    for found in await github.list_deployments(owner, repo, environment=environment, ref=sha):
        if found.payload.get("setpoint_lane") == lane:
            return found  # newest first
    return await github.create_deployment(
        owner,
        repo,
        sha,
        environment,
        description=f"Setpoint {lane}",
        payload={"setpoint_lane": lane, "setpoint_plan": str(payload["plan_id"])},
    )


async def _inactivate(
    github: GitHubClient,
    owner: str,
    repo: str,
    environment: str,
    current: DeploymentRef | None,
) -> list[int]:
    """Mark the environment's deployments before `current` (all, when None) `inactive`,
    newest first, stopping at the first one already inactive (those before it were
    marked by an earlier delivery)."""
    marked = []
    for deployment in await github.list_deployments(owner, repo, environment=environment):
        if current is not None and deployment.id >= current.id:
            continue
        statuses = await github.list_deployment_statuses(owner, repo, deployment.id)
        if statuses and statuses[0].state == "inactive":
            break
        await github.create_deployment_status(owner, repo, deployment.id, "inactive")
        marked.append(deployment.id)
    return marked


def _retry_after(exc: GitHubError, clock: Callable[[], float]) -> float | None:
    if not isinstance(exc, GitHubRateLimited):
        return None
    if exc.retry_after is not None:
        return exc.retry_after
    if exc.reset_at is not None:
        return max(0.0, exc.reset_at.timestamp() - clock())
    return None


def preview_url(lane: ProductLane | None) -> str | None:
    """Where the preview answers: its lane's first domain, or None without one."""
    if lane is None or not lane.domains:
        return None
    domain = lane.domains[0]
    return f"{'https' if domain.https else 'http'}://{domain.host}{domain.path}"


# What an outcome means for the PR's deployment, while the preview exists and once it is gone.
_STATES: dict[LaneOutcome, tuple[DeploymentState | None, DeploymentState | None]] = {
    LaneOutcome.applying: ("in_progress", None),
    LaneOutcome.applied: ("success", "inactive"),
    LaneOutcome.apply_failed: ("failure", None),
}

_FROM_APPLY = frozenset(
    {LaneOutcome.applying, LaneOutcome.applied, LaneOutcome.apply_failed, LaneOutcome.waiting}
)

_HEADLINES = {
    LaneOutcome.applying: "deploying (pending)",
    LaneOutcome.applied: "deployed",
    LaneOutcome.apply_failed: "deploy failed",
}


def _commit_line(news: LaneNews, sha: str) -> str:
    """The commit an apply deploys; a plan held back deploys nothing yet."""
    if news.outcome in _FROM_APPLY:
        return f"- Commit: `{sha[:7]}`"
    return f"- Head: `{sha[:7]}`, not deployed yet"


def _deployment_state(news: LaneNews, lane: ProductLane | None) -> DeploymentState | None:
    live, gone = _STATES.get(news.outcome, (None, None))
    return live if lane is not None else gone


def plan_ref(plan_id: str, public_url: str | None) -> str:
    """The plan as the comment names it: a link to its review page when there is one."""
    if not plan_id:
        return "`-`"
    if public_url is None:
        return f"`{plan_id}`"
    return f"[`{plan_id}`]({public_url.rstrip('/')}/plans/{quote(plan_id)})"


def _body(
    view: AnchorView,
    lane: ProductLane | None,
    news: LaneNews,
    url: str | None,
    plan: str,
    sha: str,
) -> str:
    if lane is None:
        ending = "being torn down" if news.outcome is LaneOutcome.applying else "torn down"
        return (
            f"**Setpoint preview** `{view.lane}`: {ending} ({view.detail}).\n"
            f"- Last plan: {plan}, {news.outcome}: {news.detail}"
        )
    headline = _HEADLINES.get(news.outcome, news.outcome.replace("_", " "))
    lines = [
        f"**Setpoint preview** `{view.lane}`: {headline}",
        f"- URL: {url or 'no domain (the policy has no domain template)'}",
        f"- Image: `{lane.image or lane.service_name}`",
        _commit_line(news, sha),
        f"- Health checks: {len(lane.health_checks)} (verified on every deploy)",
        f"- Last plan: {plan}, {news.detail}",
    ]
    return "\n".join(lines)
