"""Preview lanes: a pull request becomes a preview, follows its pushes, and goes away safely.

Both emulators in process: GitHub for the pull requests, Dokploy for the services.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.github.emulator import EmulatorState
from reconciler.core.adoption import adopt
from reconciler.core.lane_requests import request_documents
from reconciler.errors import AdoptionRefused, RequestRefused, UnknownLane
from reconciler.fleet import load_fleet
from reconciler.kinds.preview.lanes import AnchorState, preview_set
from reconciler.loop.passes import reconcile_pass
from reconciler.records import audit
from reconciler.records.database import session_scope
from reconciler.records.desired import store_found
from reconciler.runtime import Runtime, ShiftedClock, utcnow
from tests.reconciler.conftest import store_fleet
from tests.support.cli import Invoke
from tests.support.previews import outcomes, store_notes


def services(emulator: Emulator) -> list[str]:
    return [n for n in emulator.summary()["applications"] if n.startswith("notes-pr-")]


async def test_a_pull_request_becomes_a_preview_follows_pushes_and_goes_away(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    first = await reconcile_pass(previews)
    assert outcomes(first) == {"preview:notes/pr-1": "applied"}, first
    assert services(emulator) == ["notes-pr-1"]
    image = f"ghcr.io/acme/notes:pr-1-{pr.head_sha[:7]}"
    assert _image_of(emulator, "notes-pr-1") == image

    [comment] = github.comments_of("acme", "notes", pr.number)
    assert "https://pr-1.preview.notes.example.com/" in comment.body and image in comment.body
    quiet = await reconcile_pass(previews)  # nothing new: the comment is left alone
    assert outcomes(quiet) == {"preview:notes/pr-1": "converged"} and [
        c.body for c in github.comments_of("acme", "notes", 1)
    ] == [comment.body]

    _, after = github.push("acme", "notes", pr.number)
    pushed = await reconcile_pass(previews)
    assert outcomes(pushed) == {"preview:notes/pr-1": "applied"}
    assert _image_of(emulator, "notes-pr-1") == f"ghcr.io/acme/notes:pr-1-{after[:7]}"
    [comment] = github.comments_of("acme", "notes", pr.number)
    assert after[:7] in comment.body  # rewritten in place, not a second comment

    github.close_pull("acme", "notes", pr.number)
    closed = await reconcile_pass(previews)
    assert outcomes(closed) == {"preview:notes/pr-1": "applied"}  # the teardown
    assert services(emulator) == []
    [comment] = github.comments_of("acme", "notes", pr.number)
    assert "torn down" in comment.body
    states = [s.state for d in github.deployments_of("acme", "notes") for s in d.statuses]
    assert states.count("success") == 2 and "inactive" in states
    settled = await reconcile_pass(previews)
    assert "preview:notes/pr-1" not in outcomes(settled)
    [anchor] = preview_set(load_fleet(engine), now=1e12).anchors[-1:]
    assert anchor.state is AnchorState.gone


async def test_a_github_outage_destroys_nothing_and_holds_up_no_product_lane(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    github.faults.add("error", method="GET", path="/repos/acme/notes/pulls*", status=502)
    report = await reconcile_pass(previews)
    assert report.discovery_problems and "acme/notes" in report.discovery_problems[0]
    assert services(emulator) == ["notes-pr-1"]
    assert outcomes(report).get("preview:notes/pr-1", "converged") == "converged"
    product = {r.lane: r.outcome for r in report.lanes if r.lane.startswith("product:")}
    assert "blocked" not in product.values()


async def test_an_empty_listing_is_not_read_as_every_pr_closed(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    github.faults.add("empty_list", method="GET", path="/repos/acme/notes/pulls")
    await reconcile_pass(previews)
    assert services(emulator) == ["notes-pr-1"]  # read by number: still open


async def test_more_prs_than_the_limit_the_oldest_get_previews(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    setpoint: Invoke,
) -> None:
    store_notes(engine, tmp_path, max_active=2)
    for _ in range(3):
        github.open_pull("acme", "notes", labels=["preview"])
    github.open_pull("acme", "notes", labels=["docs"])  # no label, no preview
    await reconcile_pass(previews)
    assert services(emulator) == ["notes-pr-1", "notes-pr-2"]
    views = {a.lane: a for a in preview_set(load_fleet(engine), now=0).anchors}
    assert views["preview:notes/pr-3"].state is AnchorState.waiting
    assert "place 1 in line" in views["preview:notes/pr-3"].detail
    assert "preview:notes/pr-4" not in views
    listed = json.loads(setpoint("previews", "list", "--output", "json").stdout)
    assert [(r["pullRequest"], r["state"]) for r in listed if r["product"] == "notes"] == [
        (1, "live"),
        (2, "live"),
        (3, "waiting"),
    ]
    github.close_pull("acme", "notes", 1)
    await reconcile_pass(previews)
    assert services(emulator) == ["notes-pr-2", "notes-pr-3"]


@pytest.mark.parametrize("teardown", ["auto", "manual"])
async def test_three_prs_closing_in_one_interval(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    teardown: str,
) -> None:
    store_notes(engine, tmp_path, max_active=3, teardown=teardown)
    for _ in range(3):
        github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    assert len(services(emulator)) == 3
    for number in (1, 2, 3):
        github.close_pull("acme", "notes", number)
    report = await reconcile_pass(previews)
    if teardown == "auto":
        assert set(outcomes(report).values()) == {"applied"} and services(emulator) == []
    else:
        assert set(outcomes(report).values()) == {"awaiting_operator"}
        assert len(services(emulator)) == 3


def _image_of(emulator: Emulator, name: str) -> str | None:
    for app in emulator.state.applications.values():
        if app["name"] == name:
            image: str | None = app.get("dockerImage")
            return image
    return None


async def test_a_fork_gets_no_preview_unless_allowed_and_never_the_secrets(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path, allow_forks="[friend]")
    github.open_pull("acme", "notes", labels=["preview"], head_repo="stranger/notes")
    github.open_pull("acme", "notes", labels=["preview"], head_repo="friend/notes")
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    assert services(emulator) == ["notes-pr-2", "notes-pr-3"]
    env = _env_keys(emulator)
    assert "DATABASE_URL" not in env["notes-pr-2"]  # the fork's preview
    assert "DATABASE_URL" in env["notes-pr-3"]  # the product's own branch


def _env_keys(emulator: Emulator) -> dict[str, str]:
    return {app["name"]: app.get("env") or "" for app in emulator.state.applications.values()}


async def test_a_failed_teardown_keeps_the_anchor_and_is_tried_again(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    github.close_pull("acme", "notes", 1)
    emulator.faults.fail_next("application.delete", status=400)
    failed = await reconcile_pass(previews)
    assert outcomes(failed) == {"preview:notes/pr-1": "apply_failed"}
    assert services(emulator) == ["notes-pr-1"]
    [view] = [a for a in preview_set(load_fleet(engine), now=1e12).anchors if a.product == "notes"]
    assert view.state is AnchorState.ended  # not gone: nothing was verified
    again = await reconcile_pass(previews)
    assert outcomes(again) == {"preview:notes/pr-1": "applied"} and services(emulator) == []
    await reconcile_pass(previews)
    [view] = [a for a in preview_set(load_fleet(engine), now=1e12).anchors if a.product == "notes"]
    assert view.state is AnchorState.gone


async def test_a_preview_with_no_new_commit_for_the_ttl_ends_and_a_push_brings_it_back(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path, ttl="2")
    clock = ShiftedClock()
    later = dataclasses.replace(previews, clock=clock)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(later)
    assert services(emulator) == ["notes-pr-1"]
    clock.offset = 2 * 3600 - 60
    await reconcile_pass(later)
    assert services(emulator) == ["notes-pr-1"]  # not yet idle for two hours
    clock.offset = 2 * 3600 + 60
    idle = await reconcile_pass(later)
    assert outcomes(idle) == {"preview:notes/pr-1": "applied"} and services(emulator) == []
    github.push("acme", "notes", 1)
    back = await reconcile_pass(later)
    assert outcomes(back) == {"preview:notes/pr-1": "applied"}
    assert services(emulator) == ["notes-pr-1"]


LEDGERX = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {name: ledgerx}
spec:
  repository: acme/ledgerx
  dokploy: {project: ledgerx}
  runtime: {port: 8000}
  lanes:
    - name: testing
      target: compose
      environment: testing
      composeFile: |
        services:
          api:
            image: ${SETPOINT_PREVIEW_IMAGE:-ghcr.io/acme/ledgerx-api:main}
      domains: [{host: testing.ledgerx.example.com, service: api, port: 8000}]
      apply: auto-safe
  preview:
    enabled: true
    image: "ghcr.io/acme/ledgerx-api:pr-{number}-{sha7}"
    domain: "{slug}.preview.ledgerx.example.com"
    gracePeriodMinutes: 0
"""


async def test_a_compose_product_gets_previews_running_the_prs_image(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "ledgerx.yaml").write_text(LEDGERX)
    store_fleet(engine, tmp_path)
    pr = github.open_pull("acme", "ledgerx")
    report = await reconcile_pass(previews)
    assert {r.lane: r.outcome for r in report.lanes}["preview:ledgerx/pr-1"] == "applied"
    assert "ledgerx-pr-1" in emulator.summary()["compose"]
    env = next(
        c.get("env") or "" for c in emulator.state.composes.values() if c["name"] == "ledgerx-pr-1"
    )
    assert f"SETPOINT_PREVIEW_IMAGE=ghcr.io/acme/ledgerx-api:pr-1-{pr.head_sha[:7]}" in env


async def test_the_preview_comment_links_to_its_plan_when_a_public_url_is_set(
    previews: Runtime, github: EmulatorState, engine: Engine, tmp_path: Path
) -> None:
    """The stable /plans/{id} address of the review pages, pasted where reviewers look."""
    store_notes(engine, tmp_path)
    settings = previews.settings.model_copy(update={"public_url": "https://setpoint.example.com/"})
    linked = dataclasses.replace(previews, settings=settings)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    report = await reconcile_pass(linked)
    [plan_id] = [r.plan_id for r in report.lanes if r.lane == "preview:notes/pr-1"]
    [comment] = github.comments_of("acme", "notes", pr.number)
    assert f"[`{plan_id}`](https://setpoint.example.com/plans/{plan_id})" in comment.body


def _request(runtime: Runtime, lane: str, **params: str) -> list[str]:
    """What the API does with a workflow's request: the kind checks it, the documents it
    changes are stored."""
    documents = request_documents(runtime, lane, params)
    with session_scope(runtime.database) as session:
        stored = store_found(session, documents, source="workflow", now=utcnow())
    return [key for key, outcome, _ in stored.entries if outcome != "unchanged"]


async def test_on_request_a_head_deploys_only_once_a_workflow_asks_for_it(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path, deploy="on-request")
    pr = github.open_pull("acme", "notes", labels=["preview"])
    first = pr.head_sha  # the emulator's PR object moves with a push
    await reconcile_pass(previews)
    assert services(emulator) == []  # CI has not built the image yet
    [view] = preview_set(load_fleet(engine), now=previews.clock()).anchors
    assert view.state is AnchorState.awaiting_request and "waits for a workflow" in view.detail

    lane = "preview:notes/pr-1"
    with pytest.raises(RequestRefused, match="say which head"):
        _request(previews, lane)
    assert _request(previews, lane, sha=first) == ["PreviewAnchor/notes-pr-1"]
    assert _request(previews, lane, sha=first) == []  # asked twice: recorded once
    assert outcomes(await reconcile_pass(previews)) == {lane: "applied"}
    assert _image_of(emulator, "notes-pr-1") == f"ghcr.io/acme/notes:pr-1-{first[:7]}"

    _, after = github.push("acme", "notes", pr.number)
    await reconcile_pass(previews)  # the new head's image may not exist: keep the old one
    assert _image_of(emulator, "notes-pr-1") == f"ghcr.io/acme/notes:pr-1-{first[:7]}"
    [view] = preview_set(load_fleet(engine), now=previews.clock()).anchors
    assert f"head {after[:7]} waits for a workflow" in view.detail

    with pytest.raises(RequestRefused, match=f"head is {after[:7]}"):
        _request(previews, lane, sha=first)  # a slow build of the old head
    _request(previews, lane, sha=after)
    assert outcomes(await reconcile_pass(previews)) == {lane: "applied"}
    assert _image_of(emulator, "notes-pr-1") == f"ghcr.io/acme/notes:pr-1-{after[:7]}"


async def test_on_push_a_request_only_reconciles_and_other_kinds_take_no_parameters(
    previews: Runtime, github: EmulatorState, engine: Engine, tmp_path: Path
) -> None:
    store_notes(engine, tmp_path)
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    assert _request(previews, "preview:notes/pr-1", sha=pr.head_sha) == []
    with pytest.raises(RequestRefused, match="take no request parameters"):
        _request(previews, "product:notes/testing", sha=pr.head_sha)
    with pytest.raises(UnknownLane):
        _request(previews, "preview:notes/pr-9")


async def test_a_preview_lane_adopts_nothing(
    previews: Runtime, github: EmulatorState, engine: Engine, tmp_path: Path
) -> None:
    """A preview's service lives and dies with its pull request: taking an existing service
    into one would hand that service's life to the PR, so the preview kind offers no
    adoption (a service worth keeping is adopted into a product lane)."""
    store_notes(engine, tmp_path)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)  # discovery: the preview lane is desired
    with pytest.raises(AdoptionRefused, match="preview lanes adopt nothing"):
        await adopt(previews, "preview:notes/pr-1", "application", "app-made-by-hand", record=True)
    with session_scope(engine) as session:
        assert audit.list_records(session, event="adopted") == []
