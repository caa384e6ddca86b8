"""The operator's loop through the real CLI, over real loopback HTTP to the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Invoke
from tests.support.notes_fleet import NOTES_FLEET, NOTES_SECRET
from tests.support.secret_scan import assert_no_secrets

pytestmark = pytest.mark.e2e


def test_plan_apply_converge_audit(setpoint: Invoke, dokploy_url: str, tmp_path: Path) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(NOTES_FLEET)
    outputs: list[str] = []

    def run(*args: str, expect: int = 0) -> str:
        result = setpoint(*args)
        outputs.append(result.output)
        assert result.exit_code == expect, result.output
        return result.stdout

    run("desired", "apply", str(fleet))
    # A scheduled pass would apply this auto-safe lane; here the operator goes first.
    plan = json.loads(run("plan", "--output", "json", "--detailed-exitcode", expect=2))
    assert {a["op"] for a in plan["actions"]} >= {"create_project", "set_env", "deploy"}
    assert plan["blockers"] == []
    # No health checks: the plan and the apply say the deploy is not verified (issue 25, 6).
    assert any("not verified: no health check" in note for note in plan["notes"])
    applied = run("apply", plan["plan_id"], "--reason", "first release of notes")
    assert "applied" in applied and "not verified: no health check" in applied
    [lane] = json.loads(run("status", "--output", "json"))
    ready = next(c for c in lane["conditions"] if c["type"] == "Ready")
    assert "not verified: no health check" in ready["message"]
    # The reason is in every audit record of the apply (issue 23, item 6).
    exported = [
        json.loads(line) for line in run("audit", "export", "--format", "jsonl").splitlines()
    ]
    of_apply = [
        r for r in exported if r["plan_id"] == plan["plan_id"] and r["event"] != "plan_computed"
    ]
    assert of_apply and all(r["data"]["reason"] == "first release of notes" for r in of_apply)
    again = json.loads(run("plan", "--output", "json", "--detailed-exitcode", expect=0))
    assert again["actions"] == []
    lanes = json.loads(run("status", "--output", "json"))
    assert [(s["lane"], s["lastAppliedPlan"]) for s in lanes] == [
        ("product:notes/testing", plan["plan_id"])
    ]
    assert "verified" in run("audit", "verify")
    run("audit", "export", "--format", "jsonl")
    refused = run("apply", plan["plan_id"], expect=1)
    assert "refused" in refused
    for text in outputs:
        assert_no_secrets(text, [NOTES_SECRET])


def test_unconfigured_dokploy_is_a_clear_error(
    setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SETPOINT_DOKPLOY_URL", raising=False)
    monkeypatch.delenv("SETPOINT_DOKPLOY_API_KEY", raising=False)
    result = setpoint("plan")
    assert result.exit_code == 1
    assert "SETPOINT_DOKPLOY_URL" in result.stderr


def test_wrong_api_key_is_one_line_and_stores_no_plan(
    setpoint: Invoke, dokploy_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(NOTES_FLEET)
    setpoint("desired", "apply", str(fleet))
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "wrong")
    result = setpoint("plan", "--detailed-exitcode")
    assert result.exit_code == 1
    assert "refused the API key" in result.stderr and dokploy_url in result.stderr
    assert "plan_computed" not in setpoint("audit", "list").stdout
    assert "wrong" not in result.output.replace("wrong_", "")


def test_scheduled_pass_applies_an_auto_safe_lane(
    setpoint: Invoke, dokploy_url: str, tmp_path: Path
) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(NOTES_FLEET)
    setpoint("desired", "apply", str(fleet))
    first = setpoint("run", "--once", "--output", "json")
    assert first.exit_code == 0, first.output
    assert [(r["lane"], r["outcome"]) for r in json.loads(first.stdout)] == [
        ("product:notes/testing", "applied")
    ]
    second = setpoint("run", "--once", "--output", "json")
    assert [r["outcome"] for r in json.loads(second.stdout)] == ["converged"]
    assert_no_secrets(first.output + second.output, [NOTES_SECRET])


def test_a_lane_that_requires_a_reason_is_applied_only_with_one(
    setpoint: Invoke, dokploy_url: str, tmp_path: Path
) -> None:
    """Issue 23, item 6: a lane policy can require a reason (here the testing lane; prod
    lanes are where operators set it)."""
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(
        NOTES_FLEET.replace("apply: auto-safe", "apply: manual\n      requireReason: true")
    )
    assert setpoint("desired", "apply", str(fleet)).exit_code == 0
    plan = json.loads(setpoint("plan", "--output", "json").stdout)

    refused = setpoint("apply", plan["plan_id"])
    assert refused.exit_code == 1
    assert "reason_required" in refused.output and "--reason" in refused.output

    applied = setpoint("apply", plan["plan_id"], "--reason", "CHG-1042 approved")
    assert applied.exit_code == 0, applied.output
    again = json.loads(setpoint("plan", "--output", "json").stdout)
    assert again["actions"] == []
