"""examples/workflows/reconcile-lane.yml asks for the token it needs, mints one per request,
sends an idempotency key, and polls instead of holding a request open."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML

from tests.conftest import EXAMPLES

WORKFLOW = EXAMPLES / "workflows" / "reconcile-lane.yml"


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return loaded


def test_the_workflow_may_mint_oidc_tokens_for_setpoints_audience() -> None:
    workflow = load()
    assert workflow["permissions"]["id-token"] == "write"
    assert workflow["env"]["SETPOINT_AUDIENCE"] == "setpoint"  # the server's default audience


def test_each_request_mints_a_fresh_token_and_polls_the_operation() -> None:
    [script] = [
        s["run"] for s in load()["jobs"]["build"]["steps"] if "reconcile" in s.get("name", "")
    ]
    assert "audience=${SETPOINT_AUDIENCE}" in script
    assert "Authorization: Bearer $(mint)" in script  # minted inside each request, never reused
    assert "Idempotency-Key:" in script
    assert "/v1/lanes/${LANE_PATH}/reconcile" in script and "/v1/operations/${operation}" in script
    assert "--max-time" in script  # no request is held open for long
    assert "echo $(mint)" not in script and 'echo "$(mint)' not in script


def test_the_script_is_valid_bash() -> None:
    import shutil
    import subprocess

    bash = shutil.which("bash")
    assert bash is not None

    [script] = [
        s["run"] for s in load()["jobs"]["build"]["steps"] if "Setpoint" in s.get("name", "")
    ]
    checked = subprocess.run(  # noqa: S603 -- bash -n parses the script, runs nothing
        [bash, "-n"],
        input=script,
        text=True,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
