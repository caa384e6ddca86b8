"""PR feedback follows the apply that caused it, for the commit that apply deployed (issue 21,
items 4 and 5): a pending comment and an `in_progress` deployment when the deploy starts,
`success` with the health result when it ends, each delivery recorded per PR and tried again
on its own backoff when GitHub fails, and the PR's earlier deployments marked `inactive`.

Both emulators in process: GitHub for the pull request, Dokploy for the service.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.github.emulator import EmulatorState
from reconciler.core.apply import apply_plan
from reconciler.core.feedback import send_feedback
from reconciler.core.planning import compute_plan, load_context
from reconciler.loop.passes import PassReport, discover_into, reconcile_pass
from reconciler.records.database import session_scope
from reconciler.records.feedback_deliveries import FeedbackDelivery, deliveries_of_lane
from reconciler.runtime import Runtime, ShiftedClock
from tests.support.previews import store_notes

LANE = "preview:notes/pr-1"


def deliveries(engine: Engine) -> list[FeedbackDelivery]:
    with session_scope(engine) as session:
        return deliveries_of_lane(session, LANE)


async def operator_applies_the_preview(runtime: Runtime) -> str:
    """Discovery writes the anchor; an operator plans the preview lane and applies it."""
    context = await load_context(runtime)
    await discover_into(runtime, context, PassReport())
    plan = await compute_plan(runtime, [LANE])
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, result
    return plan.plan_id


async def test_an_apply_posts_pending_then_success_for_the_commit_it_deploys(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    plan_id = await operator_applies_the_preview(previews)  # `setpoint apply`, no loop

    [comment] = github.comments_of("acme", "notes", pr.number)
    assert "deployed" in comment.body and f"`{pr.head_sha[:7]}`" in comment.body
    assert "health check(s) passed" in comment.body  # the deploy's health result
    [deployment] = github.deployments_of("acme", "notes")
    assert deployment.sha == pr.head_sha and deployment.transient
    assert [s.state for s in deployment.statuses] == ["in_progress", "success"]
    assert deployment.statuses[-1].environment_url == "https://pr-1.preview.notes.example.com/"

    # Recorded per PR: what was sent, in order, when, and GitHub's answer.
    pending, done = deliveries(engine)
    assert [d.payload["outcome"] for d in (pending, done)] == ["applying", "applied"]
    assert "deploying (pending)" in pending.payload["comment"]
    assert pending.payload["sha"] == done.payload["sha"] == pr.head_sha
    assert {d.state for d in (pending, done)} == {"delivered"}
    assert pending.delivered_at is not None and done.delivered_at is not None
    assert pending.answer == {
        "comment": "created",
        "comment_id": comment.id,
        "deployment_id": deployment.id,
        "deployment_state": "in_progress",
    }
    assert done.answer is not None and done.answer["deployment_state"] == "success"
    assert pending.channel == done.channel == "github:acme/notes#1"
    assert done.payload["plan_id"] == plan_id


async def test_github_failing_does_not_fail_the_apply_and_feedback_lands_on_its_backoff(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    github.faults.add("error", method="GET", path="/repos/acme/notes/issues/*/comments", status=502)
    await operator_applies_the_preview(previews)  # applied, whatever GitHub says
    assert github.comments_of("acme", "notes", pr.number) == []
    assert github.deployments_of("acme", "notes") == []

    failed, waiting = deliveries(engine)
    # Tried when the apply started, and again at its end if the first backoff (full jitter
    # below 5 s) had already run out by then: never more, and never a failed apply.
    assert failed.state == "pending" and failed.attempts in (1, 2)
    assert failed.answer is not None and failed.answer["transient"] is True
    assert "502" in failed.answer["error"]
    assert failed.due_at > failed.created_at  # its own backoff, not the lane's
    assert (waiting.state, waiting.attempts) == ("pending", 0)  # after the one before it

    github.faults.clear()
    kinds = (await load_context(previews)).registry.kinds
    at_failure = dataclasses.replace(previews, clock=lambda: failed.created_at.timestamp())
    assert await send_feedback(at_failure, kinds) == []
    assert [d.state for d in deliveries(engine)] == ["pending", "pending"]  # not due yet

    later = dataclasses.replace(previews, clock=ShiftedClock(offset=3600))
    assert await send_feedback(later, kinds) == []
    assert [d.state for d in deliveries(engine)] == ["delivered", "delivered"]
    [comment] = github.comments_of("acme", "notes", pr.number)
    assert "deployed" in comment.body and f"`{pr.head_sha[:7]}`" in comment.body
    [deployment] = github.deployments_of("acme", "notes")
    assert [s.state for s in deployment.statuses] == ["in_progress", "success"]


async def test_a_push_marks_the_earlier_preview_deployment_inactive(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    before, after = github.push("acme", "notes", pr.number)
    await reconcile_pass(previews)

    newer, earlier = github.deployments_of("acme", "notes")  # newest first
    assert (earlier.sha, newer.sha) == (before, after)
    assert earlier.transient and newer.transient  # GitHub's auto_inactive skips these
    assert [s.state for s in earlier.statuses] == ["in_progress", "success", "inactive"]
    assert [s.state for s in newer.statuses] == ["in_progress", "success"]
    [comment] = github.comments_of("acme", "notes", pr.number)
    assert f"`{after[:7]}`" in comment.body and "deployed" in comment.body


async def test_a_failed_deploy_is_told_as_failure_for_its_commit(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    before, after = github.push("acme", "notes", pr.number)
    emulator.faults.fail_next("application.deploy", status=400)
    report = await reconcile_pass(previews)
    assert {r.lane: r.outcome for r in report.lanes}[LANE] == "apply_failed"

    [comment] = github.comments_of("acme", "notes", pr.number)
    assert "deploy failed" in comment.body and f"`{after[:7]}`" in comment.body
    newer, earlier = github.deployments_of("acme", "notes")
    assert (newer.sha, earlier.sha) == (after, before)
    assert [s.state for s in newer.statuses] == ["in_progress", "failure"]
    assert "400" in newer.statuses[-1].description  # why, as the apply said
    # The new commit is not running: the earlier deployment keeps its link.
    assert earlier.statuses[-1].state == "success"
