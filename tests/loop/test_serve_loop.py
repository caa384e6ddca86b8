"""`setpoint serve` as an operator runs it, with the loop beside the API: a workflow's request
over real HTTP (its OIDC token from the GitHub emulator's issuer, checked against the
emulator's JWKS) is answered 202, the loop in the same process applies the lane, and polling
ends with the result. SIGTERM stops both cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator import create_app as create_dokploy
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from reconciler.demo.loopback import LOOPBACK, free_port, serve
from reconciler.records import leases, status
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.runtime import utcnow
from tests.api.conftest import add_grant
from tests.loop.replicas import API_KEY, fleet_yaml, setpoint_run_process, store_fleet_text
from tests.support.secret_scan import assert_no_secrets
from tests.support.serving import wait_until_up

pytestmark = pytest.mark.e2e
LANE = "product:p000/testing"
LANE_PATH = "/v1/lanes/product/p000/testing/reconcile"
# How long the emulator holds the lane's deploy: the workflow's 202 and its first poll come
# well inside it even on a loaded machine, so the poll sees the operation still running.
DEPLOY_HOLD_SECONDS = 3.0
# Upper bounds for polling loops (a loaded 2-core machine starts and applies slowly).
PATIENCE_SECONDS = 90


@pytest.fixture
def dokploy() -> Iterator[tuple[str, Emulator]]:
    app = create_dokploy(api_key=API_KEY, seed=2, build_seconds=0.05)
    with serve(app) as url:
        yield url, app.state.emulator


@pytest.fixture
def github() -> Iterator[tuple[str, EmulatorState]]:
    app = create_github(seed=7)
    with serve(app) as url:
        yield url, app.state.emulator


def _serve(
    database: str, dokploy_url: str, jwks_url: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SETPOINT_DATABASE_URL": database,
        "SETPOINT_DOKPLOY_URL": dokploy_url,
        "SETPOINT_DOKPLOY_API_KEY": API_KEY,
        "SETPOINT_DEPLOY_POLL_SECONDS": "0.05",
        "SETPOINT_API_OIDC_ISSUER": DEFAULT_ISSUER,
        "SETPOINT_API_OIDC_JWKS_URL": jwks_url,
        "SETPOINT_LOOP_POLL_SECONDS": "0.1",
    }
    command = [sys.executable, "-c", "from reconciler.cli.app import main; main()"]
    with log.open("wb") as stderr:
        return subprocess.Popen(  # noqa: S603 -- our own interpreter and module, fixed arguments
            [*command, "serve", "--port", str(port), "--interval", "5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _lines_with(log: Path, event: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"event={event} " in f"{line} "]


def _wait_for_line(log: Path, event: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not _lines_with(log, event):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {event} line in: {log.read_text()}"
        time.sleep(0.1)


def _poll(url: str, github_state: EmulatorState) -> tuple[dict[str, Any], int]:
    polls = 0
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        token = github_state.mint_oidc_token()
        view = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        if view["status"] in {"succeeded", "failed", "blocked"}:
            return view, polls
        polls += 1
        time.sleep(0.1)
    raise AssertionError("the operation never finished")


def test_serve_runs_the_loop_that_answers_a_workflows_request(
    dokploy: tuple[str, Emulator], github: tuple[str, EmulatorState], tmp_path: Path
) -> None:
    dokploy_url, emulator = dokploy
    github_url, github_state = github
    database = f"sqlite:///{tmp_path / 'setpoint.db'}"
    engine = make_engine(database)
    upgrade(engine)
    store_fleet_text(engine, fleet_yaml(2))
    add_grant(engine, "product:p000/*", allow_apply=True)
    # The lane waits (its kind said "not yet" for an hour), so the scheduled pass leaves it
    # alone and only the workflow's request, which does not wait, can apply it.
    later = utcnow() + timedelta(hours=1)
    status.record(engine, LANE, status.waiting("not yet"), retry_at=later, now=utcnow())
    emulator.faults.latency(DEPLOY_HOLD_SECONDS, "application.deploy")  # outlasts the answer
    port = free_port()
    log = tmp_path / "serve.log"
    process = _serve(database, dokploy_url, f"{github_url}/.well-known/jwks", port, log)
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_until_up(base, process)
        token = github_state.mint_oidc_token()
        answer = httpx.post(
            base + LANE_PATH,
            headers={"Authorization": f"Bearer {token}"},
            json={"apply": True},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        view, polls = _poll(base + answer.headers["location"], github_state)
        # A second loop on the same SQLite file is refused while serve runs one.
        second = setpoint_run_process(database, dokploy_url)
        assert second.wait(PATIENCE_SECONDS) == 1
        _wait_for_line(log, "pass", process)  # the first pass closes after --interval 5
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    stderr = log.read_text()
    assert code == 0, stderr
    # 202 at once: the operation was still running when first polled, the result came later.
    assert polls > 0, "the request was answered only once the apply had finished"
    assert view["status"] == "succeeded", (view["result"], view.get("error"))
    assert view["result"]["outcome"] == "applied" and view["plan_id"]
    assert "p000-testing" in emulator.summary()["applications"]
    assert leases.all_leases(engine) == [], "serve gave the loop's leases back"
    engine.dispose()
    # What an operator watching the log sees: logfmt lines, one per event, no secret.
    assert _lines_with(log, "listening") and f"port={port}" in _lines_with(log, "listening")[0]
    assert _lines_with(log, "loop_started")
    (operation,) = _lines_with(log, "operation")
    assert f"lane={LANE}" in operation and "result=succeeded" in operation
    assert "requester=" in operation and view["id"] in operation
    assert "lanes=" in _lines_with(log, "pass")[0] and "seconds=" in _lines_with(log, "pass")[0]
    # The secret scan: the Dokploy key and the workflow's token, in every form they leak in.
    assert_no_secrets(stderr, [API_KEY, token])
    assert "alembic" not in stderr
