"""Item 1: any stored plan can be listed, read and applied from the file `plan --out` wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.core.plan_files import content_digest, read_plan_file
from tests.support.cli import Invoke
from tests.support.notes_fleet import NOTES_SECRET
from tests.support.secret_scan import assert_no_secrets

pytestmark = pytest.mark.e2e


def test_plans_list_and_show_any_stored_plan(setpoint: Invoke, planned: Path) -> None:
    plan_id = json.loads(planned.read_text())["plan_id"]
    listed = setpoint("plans", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if plan_id in line)
    assert "pending" in row and "product:notes/testing" in listed.stdout
    as_json = json.loads(setpoint("plans", "list", "-o", "json").stdout)
    assert [(p["plan_id"], p["status"]) for p in as_json] == [(plan_id, "pending")]

    shown = setpoint("plans", "show", plan_id)
    assert shown.exit_code == 0, shown.output
    assert f"plan {plan_id}" in shown.stdout and "deploy" in shown.stdout
    assert "status pending" in shown.stdout
    body = json.loads(setpoint("plans", "show", plan_id, "-o", "json").stdout)
    assert (
        body["status"] == "pending" and body["digest"] == json.loads(planned.read_text())["digest"]
    )
    assert_no_secrets(listed.output + shown.output, [NOTES_SECRET])

    missing = setpoint("plans", "show", "plan-000000000000")
    assert missing.exit_code == 1
    assert missing.stderr.strip().count("\n") == 0 and "plans list" in missing.stderr


def test_apply_takes_the_file_plan_out_wrote(setpoint: Invoke, planned: Path) -> None:
    plan_id = json.loads(planned.read_text())["plan_id"]
    applied = setpoint("apply", str(planned))
    assert applied.exit_code == 0, applied.output
    assert f"applied plan {plan_id}" in applied.stdout
    shown = json.loads(setpoint("plans", "show", plan_id, "-o", "json").stdout)
    assert shown["status"] == "applied"


def test_apply_refuses_an_edited_plan_file(setpoint: Invoke, planned: Path) -> None:
    body = json.loads(planned.read_text())
    body["actions"][0]["reason"] = "trust me"
    planned.write_text(json.dumps(body))
    refused = setpoint("apply", str(planned))
    assert refused.exit_code == 1
    assert "was edited" in refused.stderr and refused.stderr.strip().count("\n") == 0


def test_apply_refuses_a_file_that_is_not_the_stored_plan(setpoint: Invoke, planned: Path) -> None:
    """Edited and re-digested: self-consistent, but not what was stored under its id."""
    plan = read_plan_file(planned)
    edited = plan.model_copy(update={"actions": plan.actions[:1]})
    edited = edited.model_copy(update={"digest": content_digest(edited)})
    planned.write_text(edited.model_dump_json())
    refused = setpoint("apply", str(planned))
    assert refused.exit_code == 1
    assert f"stored plan {plan.plan_id}" in refused.stderr and "not that plan" in refused.stderr
    status = json.loads(setpoint("plans", "show", plan.plan_id, "-o", "json").stdout)["status"]
    assert status == "pending"  # nothing was applied
