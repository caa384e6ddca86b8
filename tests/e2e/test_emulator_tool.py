"""`setpoint emulator dokploy` as a tool (issue 12, item 12): build time and latency are
options, and it answers health checks for the domains it routes, so a plan with health
checks runs from the CLI against it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.demo.loopback import free_port, serve_command
from tests.support.cli import Invoke
from tests.support.notes_fleet import notes_fleet

pytestmark = pytest.mark.e2e

KEY = "emulator-tool-key"
FLEET = notes_fleet(health_path="/healthz", health_check="{path: /healthz}", apply=None)


@pytest.fixture
def emulator_url() -> Iterator[str]:
    port = free_port()
    args = (
        "emulator", "dokploy", "--port", str(port), "--api-key", KEY,
        "--build-seconds", "0.3", "--latency", "0.2",
    )  # fmt: skip
    with serve_command(args, ready_path="/api/user.get", port=port) as url:
        yield url


def test_latency_build_time_and_routed_health_checks(
    setpoint: Invoke, emulator_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started = time.monotonic()
    answer = httpx.get(f"{emulator_url}/api/project.all", headers={"x-api-key": KEY})
    assert answer.status_code == 200 and time.monotonic() - started >= 0.2
    unknown = httpx.get(f"{emulator_url}/healthz", headers={"host": "testing.notes.example.com"})
    assert unknown.status_code == 404  # nothing routed there yet

    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", emulator_url)
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", KEY)
    monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
    monkeypatch.setenv("SETPOINT_HEALTH_ROUTE_VIA", emulator_url)
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(FLEET)
    assert setpoint("desired", "apply", str(fleet)).exit_code == 0
    plan_id = setpoint("plan", "-o", "json").stdout.split('"plan_id": "', 1)[1].split('"')[0]

    started = time.monotonic()
    applied = setpoint("apply", plan_id)
    assert applied.exit_code == 0, applied.output
    assert "1 health check(s) passed" in applied.stdout
    assert time.monotonic() - started >= 0.3  # the build took its time
    routed = httpx.get(f"{emulator_url}/healthz", headers={"host": "testing.notes.example.com"})
    assert routed.status_code == 200


RUNNERS = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {name: build-1}
spec: {type: dokploy-server, dokployServer: build-1, approved: true, maxRunners: 4}
---
apiVersion: setpoint.dev/v1
kind: RunnerPool
metadata: {name: ci}
spec:
  scope: repository
  repository: acme/shop
  host: build-1
  count: {min: 1, max: 2}
  labels: [self-hosted, linux, shop]
  image: ghcr.io/actions/actions-runner:2.321.0
  ephemeral: false
  allow: [create]
"""


def test_emulator_all_serves_both_linked_so_a_runner_comes_online(
    setpoint: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 25, item 3: the runner walkthrough with nothing but `setpoint emulator all`."""
    dokploy_port, github_port = free_port(), free_port()
    args = (
        "emulator", "all", "--dokploy-port", str(dokploy_port),
        "--github-port", str(github_port), "--api-key", KEY, "--build-seconds", "0.05",
    )  # fmt: skip
    with serve_command(args, ready_path="/api/user.get", port=dokploy_port) as dokploy_url:
        github_url = dokploy_url.replace(str(dokploy_port), str(github_port))
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", dokploy_url)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", KEY)
        monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
        monkeypatch.setenv("SETPOINT_GITHUB_API_URL", github_url)
        monkeypatch.setenv("SETPOINT_GITHUB_TOKEN", "walkthrough-token")
        fleet = tmp_path / "runners.yaml"
        fleet.write_text(RUNNERS)
        assert setpoint("desired", "apply", str(fleet)).exit_code == 0
        # The create starts the runner and the lane waits for it to come online; the next
        # plan's apply sees it online (a scheduled pass would do the same on its own).
        outputs = []
        for _ in range(20):
            plan = setpoint("plan", "-o", "json")
            plan_id = plan.stdout.split('"plan_id": "', 1)[1].split('"')[0]
            if '"actions": []' in plan.stdout:
                break
            outputs.append(setpoint("apply", plan_id).output)
        else:
            raise AssertionError(f"the runner lane never converged: {outputs}")
        assert "create" in outputs[0]
        runners = httpx.get(
            f"{github_url}/repos/acme/shop/actions/runners",
            headers={"authorization": "Bearer walkthrough-token"},
            timeout=10,
        ).json()["runners"]
        assert [(r["name"], r["status"]) for r in runners] == [("setpoint-ci-1", "online")]
