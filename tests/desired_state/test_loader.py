"""YAML loading: every problem is reported, each with file:line:column and a field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from desired_state.issues import InvalidDesiredState
from desired_state.loader import load_path, load_text
from tests.conftest import EXAMPLES

BROKEN = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: shop
spec:
  repository: acme/shop
  dokploy:
    project: shop
  runtime:
    port: "8080"
  lanes:
    - name: testing
      imag: ghcr.io/acme/shop:main
"""


def test_examples_are_valid() -> None:
    documents = load_path(EXAMPLES)
    kinds = sorted(d.document.kind for d in documents)
    assert kinds.count("Product") >= 3
    assert kinds.count("RunnerPool") == 2
    assert kinds.count("Host") == 2


def test_wrong_type_unknown_field_and_missing_field_are_all_reported(tmp_path: Path) -> None:
    broken = BROKEN.replace("  dokploy:\n    project: shop\n", "")  # drop a required field
    file = tmp_path / "shop.yaml"
    file.write_text(broken)
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(file)
    rendered = [str(issue) for issue in caught.value.issues]
    assert (
        f"{file}:8:5: spec.runtime.port: Input should be a valid integer (got string); "
        "write it without quotes" in rendered
    )
    assert f"{file}:11:7: spec.lanes[0].imag: unknown field; did you mean `image`?" in rendered
    assert f"{file}:5:1: spec.dokploy: missing required field" in rendered
    # The rule across fields runs beside the field errors, in the same run.
    assert f"{file}:10:7: spec.lanes[0]: an application lane needs `image`" in rendered
    assert len(rendered) == 4


def test_missing_field_points_at_the_enclosing_mapping() -> None:
    text = BROKEN.replace('port: "8080"', "port: 8080").replace("imag:", "image:")
    text = text.replace("  repository: acme/shop\n", "")
    with pytest.raises(InvalidDesiredState) as caught:
        load_text(text, "fleet.yaml")
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.column, issue.field) == (
        "fleet.yaml",
        5,
        1,
        "spec.repository",
    )
    assert issue.message == "missing required field"


def test_errors_from_several_documents_and_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BROKEN + "---\n" + BROKEN.replace("name: shop", "name: Shop!"))
    (tmp_path / "b.yml").write_text(
        "apiVersion: setpoint.dev/v2\nkind: Widget\nmetadata: {name: w}\nspec: {}\n"
    )
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(tmp_path)
    files = {Path(i.file).name for i in caught.value.issues}
    assert files == {"a.yaml", "b.yml"}
    fields = [i.field for i in caught.value.issues]
    assert "metadata.name" in fields  # the second document in a.yaml
    assert "apiVersion" in fields and "kind" in fields


def test_yaml_syntax_error_names_the_place() -> None:
    with pytest.raises(InvalidDesiredState) as caught:
        load_text("apiVersion: x\nkind: [unclosed\n", "bad.yaml")
    (issue,) = caught.value.issues
    assert issue.file == "bad.yaml" and issue.line >= 2 and "YAML syntax" in issue.message


def test_duplicate_objects_across_files_are_refused(tmp_path: Path) -> None:
    valid = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    (tmp_path / "one.yaml").write_text(valid)
    (tmp_path / "two.yaml").write_text(valid)
    with pytest.raises(InvalidDesiredState, match="Product/docs-site is declared twice"):
        load_path(tmp_path)


def test_runner_pool_must_name_a_declared_host(tmp_path: Path) -> None:
    pools = (
        (EXAMPLES / "fleet" / "runners.yaml").read_text().replace("host: build-1", "host: nowhere")
    )
    (tmp_path / "runners.yaml").write_text(pools)
    with pytest.raises(InvalidDesiredState, match="host 'nowhere' is not declared"):
        load_path(tmp_path)


def test_missing_path_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(InvalidDesiredState, match="no such file"):
        load_path(tmp_path / "nope")


def test_two_lanes_routing_the_same_domain_are_refused(tmp_path: Path) -> None:
    docs = (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    (tmp_path / "docs.yaml").write_text(docs)
    (tmp_path / "copy.yaml").write_text(docs.replace("name: docs-site", "name: docs-copy"))
    with pytest.raises(InvalidDesiredState, match=r"docs.example.com/ is already routed by lane"):
        load_path(tmp_path)
