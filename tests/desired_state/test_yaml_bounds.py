"""Bad input costs little and says where (issue 28 item 11): a `!!python/...` tag is a
located refusal, not a TypeError traceback; a megabyte of flat YAML is refused at the first
entry past the bound instead of after building the whole tree (19-23 s and 420-600 MB);
IP literals and loopback names as domains, and control characters in paths, are refused
at `validate` instead of by the runtime guard later."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml.error import YAMLError
from typer.testing import CliRunner

from desired_state.bounded_yaml import MAX_DOCUMENTS, MAX_NODES, bounded_yaml
from desired_state.issues import InvalidDesiredState, Issue
from desired_state.loader import MAX_FILE_BYTES, load_text
from desired_state.positions import MAX_KEYS
from reconciler.cli.app import app
from tests.support.product_documents import product_yaml


def _issues(text: str) -> list[Issue]:
    with pytest.raises(InvalidDesiredState) as raised:
        load_text(text, "fleet.yaml")
    return raised.value.issues


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('!!python/object/apply:os.system ["echo hi"]', "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!Ref other", "!Ref"),
        ("!!binary aGk=", "!!binary"),
    ],
)
def test_a_tag_is_a_located_refusal(value: str, shown: str) -> None:
    text = f"apiVersion: setpoint.dev/v1\nkind: Product\nmetadata:\n  name: {value}\nspec: {{}}\n"
    [issue] = _issues(text)
    assert (issue.line, issue.column) == (4, 9)
    assert issue.message == f"the tag {shown} is not allowed: desired state is plain YAML"


def test_validate_prints_the_tag_refusal_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text("kind: Product\nmetadata: !!python/object/new:dict {}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == (
        f"{path}:2:11: the tag !!python/object/new:dict is not allowed: desired state is plain YAML"
    )


def test_even_a_core_tag_is_refused() -> None:
    lanes = "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
    [issue] = _issues(product_yaml(lanes=lanes).replace("name: orca", "name: !!str orca"))
    assert issue.message == "the tag !!str is not allowed: desired state is plain YAML"


def _stopped_after(text: str) -> int:
    """How many nodes the reader built before it refused `text`."""
    yaml = bounded_yaml()
    with pytest.raises(YAMLError):
        list(yaml.load_all(text))
    return int(yaml.composer.nodes)


def test_a_megabyte_of_flat_keys_stops_at_the_first_entry_past_the_bound() -> None:
    text = "spec:\n  env:\n" + "".join(f"    K{n}: v\n" for n in range(60_000))
    assert len(text) > MAX_FILE_BYTES // 2
    assert _stopped_after(text) <= 2 * MAX_KEYS + 5  # not 120 000
    [issue] = _issues(text)
    assert (issue.line, issue.message) == (1003, "more than 1000 entries in one mapping or list")


def test_many_small_collections_or_documents_stop_at_the_file_bound() -> None:
    wide = "".join(f"k{n}: [{', '.join(['1'] * 900)}]\n" for n in range(20))
    assert _stopped_after(wide) == MAX_NODES + 1
    assert "more than 10000 values in one file" in _issues(wide)[0].message
    documents = "---\na: 1\n" * (MAX_DOCUMENTS * 4)
    [issue] = _issues(documents)
    assert issue.message == f"more than {MAX_DOCUMENTS} documents in one file"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "localhost.localhost", "app.localhost"]
)
def test_addresses_and_loopback_names_are_no_domains(host: str) -> None:
    lanes = (
        "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
        f"      domains:\n        - host: {host}\n"
    )
    [issue] = _issues(product_yaml(lanes=lanes))
    assert issue.field == "spec.lanes[0].domains[0].host"
    assert "is not a domain" in issue.message and host not in issue.message


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("spec.runtime.healthPath", 'runtime:\n    port: 8080\n    healthPath: "/h\\r\\nX: 1"'),
        ("spec.lanes[0].domains[0].path", None),
        ("spec.lanes[0].healthChecks[0].path", None),
        ("spec.lanes[0].healthChecks[0].url", None),
    ],
)
def test_control_characters_in_paths_are_refused(field: str, text: str | None) -> None:
    lanes = (
        "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
        "      domains:\n        - host: orca.example.com\n"
    )
    if field.endswith("domains[0].path"):
        lanes += '          path: "/a\\nb"\n'
    if "healthChecks" in field:
        key = field.rsplit(".", 1)[1]
        value = '"/ready\\r\\n"' if key == "path" else '"https://orca.example.com/\\nx"'
        lanes += f"      healthChecks:\n        - {key}: {value}\n"
    document = product_yaml(lanes=lanes)
    if text is not None:
        document = document.replace("runtime:\n    port: 8080", text)
    [issue] = _issues(document)
    assert issue.field == field and "control character (CR, LF" in issue.message
