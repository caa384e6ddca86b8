"""Issue 25, item 5: messages an operator reads say where and what, without stray marks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from reconciler.core.plans import Blocker, Plan
from reconciler.kinds.runner.reasons import HOST_UNSUPPORTED
from reconciler.presentation.console import render_plan
from reconciler.runtime import utcnow


def test_a_blocker_line_names_its_lane_and_keeps_brackets_in_its_message() -> None:
    now = utcnow()
    plan = Plan(
        plan_id="plan-0123456789ab",
        digest="d" * 64,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        created_by="cli:alice",
        desired_revision="r1",
        lanes=["runner:ci/1"],
        actions=[],
        blockers=[
            Blocker(
                type=HOST_UNSUPPORTED.code,
                lane="runner:ci/1",
                message="host build-1 [dokploy-server] is not listed by Dokploy",
            )
        ],
        fingerprints={},
    )
    console = Console(record=True, width=200)
    render_plan(console, plan)
    text = console.export_text()
    assert (
        "blocked host_unsupported on runner:ci/1: host build-1 [dokploy-server] is not listed"
        in text
    )
    assert " : " not in text


PROD_WITHOUT_CHECKS = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {name: notes}
spec:
  repository: acme/notes
  dokploy: {project: notes}
  runtime: {port: 3000}
  lanes:
    - name: testing
      image: ghcr.io/acme/notes:main
    - name: prod
      image: ghcr.io/acme/notes@sha256:%s
""" % ("a" * 64)


def test_validate_warns_of_a_prod_lane_that_deploys_unverified(tmp_path: Path) -> None:
    """Issue 25, item 6: valid (exit 0), and said, at the lane's line."""
    from typer.testing import CliRunner

    from reconciler.cli.app import app

    fleet = tmp_path / "notes.yaml"
    fleet.write_text(PROD_WITHOUT_CHECKS)
    result = CliRunner().invoke(app, ["validate", str(fleet)])
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {fleet}:11:7: spec.lanes[1]: prod lane 'prod' has no healthChecks: its "
        "deploys are not verified" in result.stderr
    )
    assert "testing" not in result.stderr  # a testing lane without checks is not warned of
    as_json = CliRunner().invoke(app, ["validate", "-o", "json", str(fleet)])
    assert json.loads(as_json.stdout)["warnings"][0]["field"] == "spec.lanes[1]"
