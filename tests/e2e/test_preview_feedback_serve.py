"""`setpoint serve` end to end over loopback, both emulators linked (issue 21, items 4 and 5):
a webhook opens a PR, the preview deploys, and the PR comment goes pending -> success with
the commit deployed within a poll of the loop, with an interval of an hour, so nothing here
waits for the interval; a push repeats it for the new commit, and the earlier GitHub
deployment is marked `inactive`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import create_app as create_dokploy
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from providers.github.emulator.webhook_sender import pull_request_payload, send_webhook
from reconciler.demo.loopback import LOOPBACK, free_port, serve
from reconciler.records import work_queue
from reconciler.records.database import make_engine, session_scope
from reconciler.records.feedback_deliveries import FeedbackDelivery, deliveries_of_lane
from reconciler.records.migrate import upgrade
from reconciler.records.status import LaneStatusRow
from tests.reconciler.conftest import store_fleet
from tests.support.serving import wait_until_up

pytestmark = pytest.mark.e2e

KEY = "feedback-serve-key"
TOKEN = "ghp_feedbackserve0123456789"
SECRET = "feedback-webhook-secret"
LANE = "preview:shop/pr-1"
FLEET = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {name: shop}
spec:
  repository: acme/shop
  dokploy: {project: shop}
  runtime: {port: 3000, healthPath: /health}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/shop:main
      domains: [{host: testing.shop.example.com}]
      healthChecks: [{path: /health}]
      apply: auto-safe
  preview:
    enabled: true
    templateLane: testing
    slug: pr-{number}
    domain: "{slug}.preview.shop.example.com"
    image: "ghcr.io/acme/shop:pr-{number}-{sha7}"
    gracePeriodMinutes: 0
"""


@pytest.fixture
def github_app() -> FastAPI:
    app = create_github(seed=7, accepted_tokens=[TOKEN])
    app.state.emulator.add_repo("acme", "shop")
    return app


def wait(check: Callable[[], bool], what: str, timeout: float = 60) -> float:
    """Seconds until `check` holds; fails the test after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"no {what} after {timeout:g}s"
        time.sleep(0.05)
    return time.monotonic() - started


def deliveries(engine: Engine) -> list[FeedbackDelivery]:
    with session_scope(engine) as session:
        return deliveries_of_lane(session, LANE)


def told(state: EmulatorState, sha: str) -> Callable[[], bool]:
    """The PR's comment says `sha` is deployed, and its deployment for `sha` succeeded."""

    def check() -> bool:
        comments = state.comments_of("acme", "shop", 1)
        ours = [d for d in state.deployments_of("acme", "shop") if d.sha == sha]
        return (
            any("deployed" in c.body and f"`{sha[:7]}`" in c.body for c in comments)
            and bool(ours)
            and ours[0].statuses[-1].state == "success"
        )

    return check


def webhook(url: str, state: EmulatorState, action: str, **extra: str) -> None:
    payload = pull_request_payload(state, "acme", "shop", 1, action, **extra)

    async def send() -> int:
        answer = await send_webhook(f"{url}/v1/webhooks/github", "pull_request", payload, SECRET)
        return answer.status_code

    assert anyio.run(send) == 202


@pytest.fixture
def served(tmp_path: Path, github_app: FastAPI) -> Iterator[tuple[str, Engine]]:
    database = f"sqlite:///{tmp_path / 'setpoint.db'}"
    engine = make_engine(database)
    upgrade(engine)
    (tmp_path / "shop.yaml").write_text(FLEET)
    store_fleet(engine, tmp_path)
    dokploy = create_dokploy(api_key=KEY, seed=1, build_seconds=0.05)
    with serve(dokploy) as dokploy_url, serve(github_app) as github_url:
        github_app.state.emulator.public_url = github_url
        port = free_port()
        env = {
            **os.environ,
            "SETPOINT_DATABASE_URL": database,
            "SETPOINT_DOKPLOY_URL": dokploy_url,
            "SETPOINT_DOKPLOY_API_KEY": KEY,
            "SETPOINT_GITHUB_API_URL": github_url,
            "SETPOINT_GITHUB_TOKEN": TOKEN,
            "SETPOINT_API_WEBHOOK_SECRET": SECRET,
            "SETPOINT_HEALTH_ROUTE_VIA": dokploy_url,  # the emulator answers for its domains
            "SETPOINT_DEPLOY_POLL_SECONDS": "0.05",
            # A health check that loses a race with the emulator's build is checked again
            # soon, not in 30 s.
            "SETPOINT_HEALTH_BACKOFF_SECONDS": "1",
        }
        command = [sys.executable, "-c", "from reconciler.cli.app import main; main()"]
        process = subprocess.Popen(  # noqa: S603 -- our own interpreter and module, fixed args
            [*command, "serve", "--port", str(port), "--interval", "3600"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_until_up(url, process, timeout=180)  # a loaded machine imports slowly
            yield url, engine
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            stderr = process.stderr.read().decode() if process.stderr else ""
            assert code == 0, stderr
            assert TOKEN not in stderr and SECRET not in stderr
            engine.dispose()


def test_the_pr_hears_pending_then_success_for_each_commit_within_a_poll(
    served: tuple[str, Engine], github_app: FastAPI
) -> None:
    url, engine = served
    state: EmulatorState = github_app.state.emulator

    def first_tick_done() -> bool:  # the interval's one tick (the next is an hour away)
        with session_scope(engine) as session:
            testing = session.get(LaneStatusRow, "product:shop/testing")
            applied = testing is not None and testing.last_applied_plan is not None
            return applied and work_queue.queued(session) == []

    wait(first_tick_done, "first tick")
    pr = state.open_pull("acme", "shop")
    first = pr.head_sha
    webhook(url, state, "opened")
    # Within a poll and a deploy (slow on a loaded machine), never the hour's interval.
    wait(told(state, first), f"comment and deployment for {first[:7]}", timeout=120)
    wait(lambda: all_delivered(engine, first), "delivery records")

    [deployment] = state.deployments_of("acme", "shop")
    assert [s.state for s in deployment.statuses] == ["in_progress", "success"]
    pending, done = deliveries(engine)
    assert (pending.payload["outcome"], done.payload["outcome"]) == ("applying", "applied")
    assert "deploying (pending)" in pending.payload["comment"]
    assert f"`{first[:7]}`" in pending.payload["comment"]
    assert pending.delivered_at is not None and done.answer is not None

    before, after = state.push("acme", "shop", 1)
    webhook(url, state, "synchronize", before=before, after=after)
    wait(told(state, after), f"comment and deployment for {after[:7]}", timeout=120)
    wait(lambda: all_delivered(engine, after), "delivery records")

    deployed = state.deployments_of("acme", "shop")  # newest first
    newer = next(d for d in deployed if d.sha == after)
    assert [s.state for s in newer.statuses][-1] == "success"
    # The earlier commit's deployments no longer run anything: marked so, by Setpoint.
    assert {d.statuses[-1].state for d in deployed if d.sha == first} == {"inactive"}
    told_of = [(d.payload["outcome"], d.payload["sha"]) for d in deliveries(engine)]
    assert told_of[:2] == [("applying", first), ("applied", first)]
    assert told_of[2] == ("applying", after) and told_of[-1] == ("applied", after)


def all_delivered(engine: Engine, sha: str) -> bool:
    rows = deliveries(engine)
    last = rows[-1].payload if rows else {}
    done = (last.get("outcome"), last.get("sha")) == ("applied", sha)
    return done and all(d.state == "delivered" for d in rows)
