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
    kinds = {s["title"] for s in schema["oneOf"]}
    assert kinds == {"Product", "RunnerPool", "Host", "PreviewAnchor"}


def test_shared_database_is_never_migrated_implicitly(
    setpoint_on_empty_database: Invoke, database_url: str
) -> None:
    result = setpoint_on_empty_database("desired", "list")
    if database_url.startswith("sqlite"):
        assert result.exit_code == 0  # the embedded file is migrated on first use
    else:
        assert result.exit_code == 1 and "run `setpoint db upgrade`" in result.stderr


# Partial applies, --prune, --dry-run and directory scans, as the operator sees them.

POOL = """\
apiVersion: setpoint.dev/v1
kind: RunnerPool
metadata:
  name: extra-ci
spec:
  scope: repository
  repository: acme/extra
  host: build-1
  count: {min: 0, max: 1}
  image: ghcr.io/actions/actions-runner:2.321.0
"""


def stored_keys(setpoint: Invoke) -> set[str]:
    listed = json.loads(setpoint("desired", "list", "--output", "json").stdout)
    return {f"{o['kind']}/{o['name']}" for o in listed}


def test_one_file_is_validated_with_what_is_stored(setpoint: Invoke, tmp_path: Path) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)  # its Host, build-1, is stored, not in this file
    result = setpoint("desired", "apply", str(pool))
    assert result.exit_code == 0, result.output
    assert "1 created, 0 changed, 0 unchanged, 0 removed" in result.stdout
    # The other way round: a new product taking a stored lane's route is refused.
    docs = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    copy = tmp_path / "copy.yaml"
    copy.write_text(docs.replace("name: docs-site", "name: docs-copy"))
    refused = setpoint("desired", "apply", str(copy))
    assert refused.exit_code == 1
    assert "is already routed by lane docs-site/" in refused.stderr
    assert "(stored, from " in refused.stderr and "nothing stored" in refused.stderr
    assert "Product/docs-copy" not in stored_keys(setpoint)


def test_a_rename_refused_without_prune_says_prune_is_the_way(
    setpoint: Invoke, tmp_path: Path
) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    docs = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    renamed = tmp_path / "fleet"
    renamed.mkdir()
    (renamed / "docs-site.yaml").write_text(docs.replace("name: docs-site", "name: docs-web"))
    refused = setpoint("desired", "apply", str(renamed / "docs-site.yaml"))
    assert refused.exit_code == 1
    said = " ".join(refused.stderr.split())
    assert "is already routed by lane docs-site/" in said
    assert "If docs-web/" in said and "apply with --prune" in said
    assert "`renamedFrom: docs-site/" in said
    assert "Product/docs-web" not in stored_keys(setpoint)


def test_prune_with_no_documents_is_refused(setpoint: Invoke, tmp_path: Path) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    before = stored_keys(setpoint)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = setpoint("desired", "apply", "--prune", "--yes", str(empty))
    assert result.exit_code == 1  # an error an operator can act on, as docs/cli.md says
    assert "would remove everything stored; nothing removed" in result.stderr
    assert stored_keys(setpoint) == before


def test_prune_lists_what_it_removes_and_asks(setpoint: Invoke, tmp_path: Path) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    before = stored_keys(setpoint)
    docs = tmp_path / "docs.yaml"
    docs.write_text((EXAMPLES / "fleet" / "docs-site.yaml").read_text())
    declined = setpoint("desired", "apply", "--prune", str(docs), input="n\n")
    assert declined.exit_code == 1
    assert "--prune would remove 6 stored object(s):" in declined.stderr
    assert "  Product/shop" in declined.stderr and "Remove them?" in declined.stderr
    assert "pass --yes to remove without asking" in declined.stderr
    assert stored_keys(setpoint) == before
    no_terminal = setpoint("desired", "apply", "--prune", str(docs))  # a script, no answer
    assert no_terminal.exit_code == 1 and stored_keys(setpoint) == before
    agreed = setpoint("desired", "apply", "--prune", str(docs), input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert "6 removed" in agreed.stdout
    assert stored_keys(setpoint) == {"Product/docs-site"}


def test_prune_with_yes_does_not_ask(setpoint: Invoke, tmp_path: Path) -> None:
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    docs = tmp_path / "docs.yaml"
    docs.write_text((EXAMPLES / "fleet" / "docs-site.yaml").read_text())
    result = setpoint("desired", "apply", "--prune", "--yes", str(docs))
    assert result.exit_code == 0 and "Remove them?" not in result.stderr
    assert stored_keys(setpoint) == {"Product/docs-site"}


def test_dry_run_shows_what_would_change_and_stores_nothing(
    setpoint: Invoke, tmp_path: Path
) -> None:
    dry = setpoint("desired", "apply", "--dry-run", str(EXAMPLES))
    assert dry.exit_code == 0, dry.output
    assert "would be created Product/shop (generation 1)" in dry.stdout
    assert "dry run, nothing stored: would be 7 created" in dry.stdout
    assert stored_keys(setpoint) == set()
    assert setpoint("desired", "apply", str(EXAMPLES)).exit_code == 0
    docs = tmp_path / "docs.yaml"
    docs.write_text((EXAMPLES / "fleet" / "docs-site.yaml").read_text())
    pruned = setpoint("desired", "apply", "--prune", "--dry-run", "-o", "json", str(docs))
    entries = json.loads(pruned.stdout)
    assert {e["object"] for e in entries if e["result"] == "removed"} == (
        stored_keys(setpoint) - {"Product/docs-site"}
    )
    assert all(e["dryRun"] for e in entries) and len(stored_keys(setpoint)) == 7


def test_directory_scans_say_what_they_skipped(setpoint: Invoke, tmp_path: Path) -> None:
    (tmp_path / "docs.yaml").write_text((EXAMPLES / "fleet" / "docs-site.yaml").read_text())
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    result = setpoint("validate", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "valid: 1 document(s)" in result.stdout
    assert (
        "skipped 2 YAML file(s): 1 in a hidden folder, 1 not a setpoint.dev document"
        in result.stdout
    )
    applied = setpoint("desired", "apply", str(tmp_path))
    assert applied.exit_code == 0 and "skipped 2 YAML file(s)" in applied.stdout


def test_a_long_list_of_skipped_files_is_cut_short() -> None:
    from io import StringIO

    from rich.console import Console

    from desired_state.loader import Skipped
    from reconciler.cli.validate_commands import print_skipped

    out = StringIO()
    skipped = [Skipped(f".venv/lib/f{n}.yaml", "in a hidden folder") for n in range(25)]
    print_skipped(skipped, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert lines[0] == "skipped 25 YAML file(s): 25 in a hidden folder"
    assert len(lines) == 12 and lines[-1] == "  and 15 more"
