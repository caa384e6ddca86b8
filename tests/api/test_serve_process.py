"""`setpoint serve` as an operator runs it: a child process on loopback, answering over real
HTTP, and stopping cleanly (exit 0) on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from providers.dokploy.emulator import create_app
from reconciler.demo.loopback import LOOPBACK, free_port, serve
from reconciler.records.database import make_engine, session_scope
from reconciler.records.migrate import upgrade
from reconciler.records.operator_tokens import issue
from reconciler.runtime import utcnow
from tests.support.serving import wait_until_up

pytestmark = pytest.mark.e2e
KEY = "serve-test-key"


@pytest.fixture
def dokploy_url() -> Iterator[str]:
    with serve(create_app(api_key=KEY, seed=1, build_seconds=0.05)) as url:
        yield url


def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(
    dokploy_url: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'setpoint.db'}"
    engine = make_engine(database)
    upgrade(engine)
    with session_scope(engine) as session:
        token = issue(session, "alice", utcnow()).token
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "SETPOINT_DATABASE_URL": database,
        "SETPOINT_DOKPLOY_URL": dokploy_url,
        "SETPOINT_DOKPLOY_API_KEY": KEY,
    }
    command = [sys.executable, "-c", "from reconciler.cli.app import main; main()"]
    process = subprocess.Popen(  # noqa: S603 -- our own interpreter and module, fixed arguments
        [*command, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until_up(url, process)
        answer = httpx.post(
            f"{url}/v1/lanes/product/shop/testing/reconcile",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        # No desired state stored: the lane is unknown, said as problem JSON over real HTTP.
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert code == 0, stderr
    assert token not in stderr
