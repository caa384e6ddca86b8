"""The foundation commands as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import EXAMPLES
from tests.support.cli import Invoke


def test_validate_examples_exits_zero(setpoint: Invoke) -> None:
    result = setpoint("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert "valid: 7 document(s)" in result.output


def test_validate_reports_every_problem_with_its_place(setpoint: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: setpoint.dev/v1\nkind: Host\nmetadata:\n  name: h\nspec:\n"
        "  type: ssh\n  approved: 'yes'\n  colour: blue\n"
    )
    result = setpoint("validate", str(bad), "--output", "json")
    assert result.exit_code == 1
    issues = json.loads(result.stdout)["issues"]
    assert {(i["line"], i["column"], i["field"]) for i in issues} == {
        (6, 3, "spec.type"),  # an ssh host needs `ssh`: reported beside the field errors
        (7, 3, "spec.approved"),
        (8, 3, "spec.colour"),
    }


def test_desired_apply_twice_then_list_and_show(setpoint: Invoke) -> None:
    first = setpoint("desired", "apply", str(EXAMPLES), "--output", "json")
    assert first.exit_code == 0, first.output
    assert {e["result"] for e in json.loads(first.stdout)} == {"created"}
    second = setpoint("desired", "apply", str(EXAMPLES))
    assert second.exit_code == 0
    assert "0 created, 0 changed, 7 unchanged, 0 removed" in second.stdout
    listed = json.loads(setpoint("desired", "list", "--output", "json").stdout)
    assert {(o["kind"], o["name"], o["generation"]) for o in listed} >= {("Product", "shop", 1)}
    shown = json.loads(setpoint("desired", "show", "Product/ledger", "--output", "json").stdout)
    assert shown["spec"]["lanes"][0]["target"] == "compose"


def test_invalid_input_stores_nothing(setpoint: Invoke, tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text((EXAMPLES / "fleet" / "docs-site.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("apiVersion: setpoint.dev/v1\nkind: Host\n")
    result = setpoint("desired", "apply", str(tmp_path))
    assert result.exit_code == 1
    assert "nothing stored" in result.stderr
    assert json.loads(setpoint("desired", "list", "--output", "json").stdout) == []


def test_show_unknown_object_is_a_clear_error(setpoint: Invoke) -> None:
    result = setpoint("desired", "show", "Product/nope")
    assert result.exit_code == 1 and "Product/nope is not in the desired state" in result.stderr
    result = setpoint("desired", "show", "nope")
    assert result.exit_code == 2 and "expected KIND/NAME" in result.stderr


def test_db_upgrade_then_check(setpoint_on_empty_database: Invoke) -> None:
    setpoint = setpoint_on_empty_database
    result = setpoint("db", "upgrade")
    assert result.exit_code == 0 and "upgraded empty ->" in result.stdout
    assert "already at" in setpoint("db", "upgrade").stdout
    check = setpoint("db", "check")
    assert check.exit_code == 0 and "no drift" in check.stdout


def test_schema_describes_every_kind(setpoint: Invoke) -> None:
    schema = json.loads(setpoint("schema").stdout)
    assert {s["title"] for s in schema["oneOf"]} == {"Product", "RunnerPool", "Host"}


def test_shared_database_is_never_migrated_implicitly(
    setpoint_on_empty_database: Invoke, database_url: str
) -> None:
    result = setpoint_on_empty_database("desired", "list")
    if database_url.startswith("sqlite"):
        assert result.exit_code == 0  # the embedded file is migrated on first use
    else:
        assert result.exit_code == 1 and "run `setpoint db upgrade`" in result.stderr
