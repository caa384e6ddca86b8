"""`setpoint validate` refuses, at its key, an env value Dokploy's parser would not give back
as written (invariant 16), and never echoes the value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from desired_state.issues import InvalidDesiredState
from desired_state.loader import load_text
from reconciler.cli.app import app

PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: shop
spec:
  repository: acme/shop
  dokploy: {project: shop}
  runtime: {port: 8080}
  env:
    DB_URL: "${{project.DB_URL}}"
    GREETING: 'say "hi"'
  lanes:
    - name: testing
      image: ghcr.io/acme/shop:main
      env:
        EVERYTHING: "it's `here`\\nC:\\\\new"
        WINDOWS: 'C:\\path\\n'
"""


def test_values_no_spelling_carries_are_refused_at_their_keys_without_the_value() -> None:
    with pytest.raises(InvalidDesiredState) as caught:
        load_text(PRODUCT, "fleet.yaml")
    issues = {issue.field: issue for issue in caught.value.issues}
    assert sorted(issues) == ["spec.env.DB_URL", "spec.lanes[0].env.EVERYTHING"]
    template, mixed = issues["spec.env.DB_URL"], issues["spec.lanes[0].env.EVERYTHING"]
    assert (template.line, template.column) == (10, 5)
    assert (mixed.line, mixed.column) == (16, 9)
    assert "${{" in template.message and "expands" in template.message
    assert "a single quote, a backtick, a line break, a backslash before 'n'" in mixed.message
    for issue in issues.values():
        assert "project.DB_URL" not in issue.message and "here" not in issue.message


def test_validate_prints_each_refusal_with_file_line_and_column(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(PRODUCT)
    result = CliRunner().invoke(app, ["validate", str(fleet)])
    assert result.exit_code == 1
    assert f"{fleet}:10:5: spec.env.DB_URL: env DB_URL cannot be written to Dokploy" in (
        result.output
    )


def test_values_the_old_escapes_broke_are_now_accepted() -> None:
    kept = [ln for ln in PRODUCT.splitlines() if "DB_URL" not in ln and "EVERYTHING" not in ln]
    (loaded,) = load_text("\n".join(kept) + "\n", "fleet.yaml")
    assert loaded.document.kind == "Product"
