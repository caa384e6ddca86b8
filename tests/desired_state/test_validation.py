"""Validation that helps: every problem in one run, each at its line, bounded, with a hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from desired_state.issues import InvalidDesiredState, Issue
from desired_state.loader import MAX_FILE_BYTES, load_path, load_text, scan_path
from tests.conftest import EXAMPLES

DIGEST = "sha256:" + "a" * 64


def issues_of(text: str, source: str = "fleet.yaml") -> list[Issue]:
    with pytest.raises(InvalidDesiredState) as caught:
        load_text(text, source)
    return caught.value.issues


def rendered(text: str) -> list[str]:
    return [str(issue) for issue in issues_of(text)]


PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: shop
spec:
  repository: acme/shop
  dokploy: {project: shop}
  runtime: {port: 8080}
  lanes:
    - name: testing
      image: ghcr.io/acme/shop:main
"""

POOL = """\
apiVersion: setpoint.dev/v1
kind: RunnerPool
metadata:
  name: ci
spec:
  scope: repository
  repository: acme/shop
  host: build-1
  count:
    min: 3
    max: 1
  image: ghcr.io/actions/actions-runner:2.321.0
"""

HOST = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata:
  name: build-1
spec:
  type: dokploy-server
  dokployServer: build-1
"""


# 7. Every problem in one run, each at the line of the field concerned.


def test_field_errors_rules_and_cross_document_checks_come_out_together() -> None:
    text = (
        PRODUCT.replace("port: 8080", 'port: "8080"')  # a field error
        + "    - name: prod\n      image: ghcr.io/acme/shop:v1\n"  # a rule: prod needs a digest
        + "---\n"
        + PRODUCT  # a duplicate object, across documents
        + "---\n"
        + POOL.replace("host: build-1", "host: nowhere")
    )
    assert rendered(text) == [
        "fleet.yaml:8:13: spec.runtime.port: Input should be a valid integer (got string); "
        "write it without quotes",
        "fleet.yaml:13:7: spec.lanes[1].image: lane 'prod' is a prod lane: its image must be "
        "pinned by an immutable digest (name@sha256:<64 hex>), not a tag",
        # The second `shop` is reported at its metadata.name, not at the top of its document.
        "fleet.yaml:18:3: metadata.name: Product/shop is declared twice (first at fleet.yaml:1)",
        # validate reads only the files, and says so (issue 25, item 5)
        "fleet.yaml:34:3: spec.host: host 'nowhere' is not declared as a Host (in these files)",
        # count.min at its own line, not at `spec`.
        "fleet.yaml:36:5: spec.count.min: count.min (3) must be <= count.max (1)",
    ]


def test_a_rule_is_reported_even_when_another_field_is_wrong() -> None:
    text = POOL.replace("scope: repository", "scope: repo") + "---\n" + HOST
    found = rendered(text)
    assert any("spec.scope: Input should be 'repository' or 'organization'" in f for f in found)
    assert "fleet.yaml:10:5: spec.count.min: count.min (3) must be <= count.max (1)" in found


def test_duplicate_lane_names_and_shared_routes_point_at_their_own_lines() -> None:
    text = PRODUCT + (
        "    - name: testing\n      image: ghcr.io/acme/shop:main\n"
        "      domains: [{host: shop.example.com}]\n"
        "    - name: staging\n      image: ghcr.io/acme/shop:main\n"
        "      domains:\n        - host: shop.example.com\n"
    )
    found = rendered(text)
    assert "fleet.yaml:12:7: spec.lanes[1].name: lane names must be unique; repeated: testing" in (
        found
    )
    assert (
        "fleet.yaml:18:11: spec.lanes[2].domains[0].host: shop.example.com/ is already routed "
        "by lane shop/testing" in found
    )


# 10. Directory scans skip hidden folders and YAML that is not Setpoint's, and say so.


def test_directory_scan_skips_hidden_folders_and_foreign_yaml(tmp_path: Path) -> None:
    (tmp_path / "fleet").mkdir()
    (tmp_path / "fleet" / "docs.yaml").write_text(
        (EXAMPLES / "fleet" / "docs-site.yaml").read_text()
    )
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / "docker-compose.yml").write_text("services:\n  web: {image: nginx}\n")
    (tmp_path / "helm.yaml").write_text("name: {{ .Values.name }\n")  # not YAML, not ours
    scan = scan_path(tmp_path)
    assert [d.document.key for d in scan.documents] == ["Product/docs-site"]
    reasons = {Path(s.file).name: s.reason for s in scan.skipped}
    assert reasons == {
        "ci.yml": "in a hidden folder",
        "docker-compose.yml": "not a setpoint.dev document",
        "helm.yaml": "not a setpoint.dev document",
    }


def test_a_setpoint_document_with_a_wrong_api_version_is_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "host.yaml").write_text(HOST.replace("setpoint.dev/v1", "setpoint.dev/v2"))
    (tmp_path / "kindonly.yaml").write_text("kind: Host\nmetadata: {name: h}\n")
    with pytest.raises(InvalidDesiredState) as caught:
        scan_path(tmp_path)
    fields = {(Path(i.file).name, i.field) for i in caught.value.issues}
    assert ("host.yaml", "apiVersion") in fields
    assert ("kindonly.yaml", "") in fields  # missing apiVersion and spec


def test_a_file_named_on_the_command_line_is_never_skipped(tmp_path: Path) -> None:
    file = tmp_path / "docker-compose.yml"
    file.write_text("services: {}\n")
    with pytest.raises(InvalidDesiredState, match="missing required field 'apiVersion'"):
        load_path(file)


# 11. Bad input is bounded, and each refusal is located.


def test_an_alias_bomb_is_refused_quickly_with_a_location() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 12)]
    (issue,) = issues_of("\n".join(lines) + "\n")
    assert "expands to more than" in issue.message
    assert issue.line >= 1 and issue.field.startswith("a")


def test_a_file_too_large_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(big)
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (1, 1) and "larger than 1024 KiB" in issue.message


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a: [" * 40 + "]" * 40, (1, 1), "nested more than 32 levels"),
        ("[" * 5000 + "]" * 5000, (1, 33), "nested too deeply"),
        (
            "spec:\n  env:\n" + "".join(f"    K{n}: v\n" for n in range(1001)),
            (1003, 5),  # the first entry past the bound: reading stops there
            "more than 1000 entries",
        ),
    ],
)
def test_deep_or_wide_input_is_a_located_error(
    text: str, where: tuple[int, int], words: str
) -> None:
    (issue,) = issues_of(text)
    assert (issue.line, issue.column)[0] == where[0] and words in issue.message


def test_binary_and_non_utf8_files_are_located_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"apiVersion: setpoint.dev/v1\nkind: \x00\x01\x02\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"apiVersion: setpoint.dev/v1\nkind: Host\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(binary)
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (2, 7) and "binary" in issue.message
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(latin)
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (3, 21) and "not UTF-8" in issue.message


# 12. The plain-env secret check.


def with_env(env: str, annotations: str = "") -> str:
    text = PRODUCT.replace("  name: shop\n", "  name: shop\n" + annotations)
    return text.replace("  runtime: {port: 8080}\n", "  runtime: {port: 8080}\n  env:\n" + env)


SECRETS = {
    "DATABASE_URL": "postgres://app:s3cr3t-pw@db.internal/app",
    "MAPS_URL": "https://maps.example.com/api?key=AIzaSyD-0123456789abcdef",
    "ALERTS": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX",
    "DISCORD": "https://discord.com/api/webhooks/123/abcdefabcdef",
    "DB_PASSWORD": "hunter2",
}


def test_every_secret_looking_key_is_reported_at_its_key_and_no_value_is_echoed() -> None:
    env = "".join(f"    {key}: {value}\n" for key, value in SECRETS.items())
    found = issues_of(with_env(env))
    assert [(i.line, i.field) for i in found] == [
        (10 + n, f"spec.env.{key}") for n, key in enumerate(SECRETS)
    ]
    everything = "\n".join(str(i) for i in found)
    for value in SECRETS.values():
        assert value not in everything
    for part in ("s3cr3t-pw", "AIzaSyD", "XXXXXXXX", "hunter2"):
        assert part not in everything
    assert "a URL with a password" in everything and "a chat webhook URL" in everything


def test_a_value_can_be_declared_not_secret() -> None:
    env = "    PASSWORD_RESET_URL: https://shop.example.com/reset\n"
    refused = issues_of(with_env(env))
    assert "setpoint.dev/not-secret" in refused[0].message
    note = "  annotations:\n    setpoint.dev/not-secret: PASSWORD_RESET_URL\n"
    (loaded,) = load_text(with_env(env, note))
    assert loaded.document.spec_dict()["env"] == {
        "PASSWORD_RESET_URL": "https://shop.example.com/reset"
    }


def test_a_duplicate_key_error_names_the_key_never_the_values() -> None:
    env = "    API_TOKEN: first-secret-value\n    API_TOKEN: second-secret-value\n"
    (issue,) = issues_of(with_env(env))
    assert issue.line == 11 and "duplicate key 'API_TOKEN'" in issue.message
    assert "secret-value" not in str(issue)


# 13. Messages that say what to do.


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("      image: ghcr.io/acme/shop:main\n", "      image: x/y:1\n      replica: 2\n"),
            "spec.lanes[0].replica: unknown field; did you mean `replicas`?",
        ),
        (("kind: Product", "kind: Prodcut"), "kind: unknown kind; expected one of Host, "),
        (("kind: Product", "kind: Prodcut"), "did you mean `Product`?"),
        (
            ("  lanes:\n", "  env: {VERSION: 1.10}\n  lanes:\n"),
            "spec.env.VERSION: Input should be a valid string (got number); quote it",
        ),
        (
            (
                "      image: ghcr.io/acme/shop:main\n",
                "      image: x/y:1\n      domains:\n        - host: https://shop.example.com\n",
            ),
            "host: not a valid host name: drop the scheme",
        ),
        (
            (
                "      image: ghcr.io/acme/shop:main\n",
                "      image: x/y:1\n      domains:\n        - host: shop.example.com:8443\n",
            ),
            "put the port in `port`",
        ),
        (
            (
                "  lanes:\n",
                "  promotion:\n    gate: {url: 'https://b.example.com/', command: [x]}\n  lanes:\n",
            ),
            "spec.promotion.gate: a promotion gate is either `url` or `command`, exactly one",
        ),
        (
            (
                "      image: ghcr.io/acme/shop:main\n",
                "      image: x/y:1\n      onFailedHealth: yes\n",
            ),
            "spec.lanes[0].onFailedHealth: Input should be 'none' or 'rollback'",
        ),
    ],
)
def test_messages_say_what_to_do(change: tuple[str, str], expected: str) -> None:
    found = "\n".join(rendered(PRODUCT.replace(*change)))
    assert expected in found


# The property: generated documents never crash validation, and every error is located.

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["Product", "Host", "RunnerPool", "setpoint.dev/v1", "prod", "compose"]),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "spec",
            "lanes",
            "image",
            "env",
            "secrets",
            "domains",
            "host",
            "count",
            "min",
            "max",
            "target",
            "composeFile",
            "preview",
            "enabled",
            "templateLane",
            "fromEnv",
            "type",
            "ssh",
            "scope",
            "replicas",
        ]
    ),
    st.text(min_size=1, max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)


def _mutated_example(base: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    node: Any = base
    for part in path[:-1]:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_map or in_list):
            return base
        node = node[part]
    if isinstance(node, dict):
        node[path[-1]] = value
    return base


def _dump(documents: list[Any]) -> str:
    from io import StringIO

    out = StringIO()
    YAML(typ="safe", pure=True).dump_all(documents, out)
    return out.getvalue()


_EXAMPLE_DOCS = list(
    YAML(typ="safe", pure=True).load_all((EXAMPLES / "fleet" / "shop.yaml").read_text())
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.lists(st.one_of(_keys, st.integers(0, 3)), min_size=1, max_size=5), _values),
        max_size=4,
    ),
    st.lists(st.one_of(_values, st.dictionaries(_keys, _values, max_size=6)), max_size=2),
)
def test_validation_never_crashes_and_every_error_is_located(
    mutations: list[tuple[list[str | int], Any]], extra: list[Any]
) -> None:
    import copy

    document = copy.deepcopy(_EXAMPLE_DOCS[0])
    for path, value in mutations:
        document = _mutated_example(document, path, value)
    text = _dump([document, *extra])
    try:
        load_text(text, "gen.yaml")
    except InvalidDesiredState as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "gen.yaml"
            assert issue.line >= 1 and issue.column >= 1, issue
            assert issue.message


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_any_text_is_valid_or_a_located_error(text: str) -> None:
    try:
        load_text(text, "any.yaml")
    except InvalidDesiredState as exc:
        assert all(i.line >= 1 and i.column >= 1 and i.message for i in exc.issues)


_MARK = "Zq9MARKq9Z"
_env_values = st.one_of(
    st.sampled_from(
        [
            f"postgres://app:{_MARK}@db/app",
            f"https://x.example.com/?token={_MARK}",
            f"https://hooks.slack.com/services/T0/B0/{_MARK}",
            _MARK,
            f"ghp_{_MARK}{_MARK}{_MARK}",
        ]
    ),
    st.builds(lambda n: [_MARK] * n, st.integers(1, 2)),
    st.builds(lambda: {"value": _MARK}),
)


@settings(max_examples=60)
@given(
    st.dictionaries(
        st.sampled_from(["DB_PASSWORD", "API_TOKEN", "URL", "HOOK", "X", "bad-name", "1ST"]),
        _env_values,
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_no_error_ever_repeats_an_env_value(env: dict[str, Any], duplicate: bool) -> None:
    lines = "".join(f"    {key}: {_flow(value)}\n" for key, value in env.items())
    if duplicate:
        key, value = next(iter(env.items()))
        lines += f"    {key}: {_flow(value)}\n"
    try:
        load_text(with_env(lines))
    except InvalidDesiredState as exc:
        assert all(_MARK not in str(issue) for issue in exc.issues)


def _flow(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return f'"{value}"'
