"""SIGKILL a real `setpoint apply` mid-flight; the next plan and apply converge on their own.

The kill lands while a create's answer is in flight (the emulator did the work and holds the
answer back), so the service exists in Dokploy without Setpoint having recorded it: the
worst moment for a crash. No `adopt`, no lease release, no waiting for a lease to lapse.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator, create_app
from reconciler.demo.loopback import serve
from reconciler.records import plan_store
from reconciler.records.plan_store import PlanStatus
from tests.support.cli import Invoke

pytestmark = pytest.mark.e2e

API_KEY = "crash-e2e-key"
PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: {name}}}
spec:
  repository: acme/{name}
  dokploy: {{project: {name}}}
  runtime: {{port: 8080}}
  env: {{LOG_LEVEL: info}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/{name}:main
      domains: [{{host: testing.{name}.example.com}}]
    - name: prod
      environment: production
      image: ghcr.io/acme/{name}@sha256:abababababababababababababababababababababababababababababababab
      domains: [{{host: {name}.example.com}}]
"""


@pytest.fixture
def dokploy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Emulator]]:
    app = create_app(api_key=API_KEY, seed=5, build_seconds=0.2)
    with serve(app) as base:
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", API_KEY)
        monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
        yield base, app.state.emulator


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkill_mid_apply_then_the_next_plan_and_apply_converge(
    setpoint: Invoke,
    dokploy: tuple[str, Emulator],
    database_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    _, emulator = dokploy
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for name in ("atlas", "birch", "cedar"):
        (fleet / f"{name}.yaml").write_text(PRODUCT.format(name=name))
    stored = setpoint("desired", "apply", str(fleet))
    assert stored.exit_code == 0, stored.output
    plan = json.loads(setpoint("plan", "--output", "json").stdout)
    assert plan["blockers"] == []
    # The first application create does its work, then its answer hangs.
    emulator.faults.timeout("application.create", seconds=60, when="after", count=1)

    log = (tmp_path / "apply.log").open("w")
    apply = subprocess.Popen(  # noqa: S603 -- our own interpreter, fixed argv
        [
            sys.executable,
            "-c",
            "from reconciler.cli.app import main; main()",
            "apply",
            plan["plan_id"],
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SETPOINT_DATABASE_URL": database_url},
    )
    try:
        _wait_for(lambda: emulator.summary()["applications"], "the first create to be done")
        # The other lanes get on with it while that answer hangs: killed once one more is made.
        _wait_for(lambda: len(emulator.summary()["applications"]) > 1, "a second create")
        assert apply.poll() is None, (tmp_path / "apply.log").read_text()
        apply.send_signal(signal.SIGKILL)
        apply.wait(timeout=10)
    finally:
        if apply.poll() is None:
            apply.kill()
        log.close()
    killed_at = time.monotonic()
    emulator.faults.reset()

    # No manual step: the next plan takes over at once and offers to reclaim what the
    # killed create made, instead of blocking its lane as not owned.
    again = json.loads(setpoint("plan", "--output", "json").stdout)
    assert again["blockers"] == [], again["blockers"]
    assert "reclaim_service" in {a["op"] for a in again["actions"]}
    applied = setpoint("apply", again["plan_id"])
    assert applied.exit_code == 0, applied.output
    final = json.loads(setpoint("plan", "--output", "json").stdout)
    assert final["actions"] == [] and final["blockers"] == []
    assert time.monotonic() - killed_at < 60

    names = emulator.summary()["applications"]
    assert sorted(names) == sorted(set(names)), f"duplicate services: {names}"
    assert len(names) == 6
    assert plan_store.load(engine, plan["plan_id"])[1] is PlanStatus.interrupted
    assert "verified" in setpoint("audit", "verify").stdout
    assert setpoint("leases", "list").stdout.startswith("no lane is leased")
