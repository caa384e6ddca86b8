"""Load desired-state YAML from a file or a directory, reporting every problem with its place.

Every problem comes out of one run: field errors, the rules across fields (`rules.py`), the
plain-env secret check and the checks across documents all run on what was read, each
located at the line of the field concerned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from desired_state import hints as hint
from desired_state.bounded_yaml import InputBound, bounded_yaml
from desired_state.document import API_VERSION, SPEC_MODELS, Document, Metadata
from desired_state.issues import InvalidDesiredState, Issue
from desired_state.positions import MAX_DEPTH, Position, TooLarge, nearest, plain_with_positions
from desired_state.positions import Path as FieldPath
from desired_state.product import ProductSpec
from desired_state.product_checks import product_issues, service_name
from desired_state.rules import SPEC_RULES, RuleError
from desired_state.secret_sources import SecretSources, product_source_problems
from desired_state.secrets import not_secret_keys, product_env_rules

YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1024 * 1024  # desired state is hand-written: a megabyte is plenty
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec")


@dataclass(frozen=True)
class LoadedDocument:
    document: Document
    source: str  # file path as given, for messages and the stored source column
    line: int


@dataclass(frozen=True)
class Skipped:
    """A YAML file a directory scan left out, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class StoredDocument:
    """An object already in the store: the other side of the checks across documents."""

    kind: str
    name: str
    spec: dict[str, Any]
    source: str


@dataclass
class Scan:
    documents: list[LoadedDocument] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Valid, but worth a look: said by `validate`, never a reason to refuse.
    warnings: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class _Raw:
    """One document as read: plain data, where each field was written, and its file."""

    data: Any
    positions: dict[FieldPath, Position]
    source: str
    stored: bool = False

    def issue(self, path: FieldPath, message: str) -> Issue:
        line, col = nearest(self.positions, path)
        return Issue(self.source, line + 1, col + 1, _dotted(path), message)

    @property
    def key(self) -> str | None:
        kind, name = self.data.get("kind"), _map(self.data.get("metadata")).get("name")
        return f"{kind}/{name}" if isinstance(kind, str) and isinstance(name, str) else None

    @property
    def line(self) -> int:
        return nearest(self.positions, ())[0] + 1


def yaml_files(path: Path) -> list[Path]:
    return [file for file, hidden in _yaml_files(path) if not hidden]


def _yaml_files(path: Path) -> list[tuple[Path, bool]]:
    """YAML files under `path`, each with whether it sits in a hidden folder (or is hidden)."""
    if not path.is_dir():
        return [(path, False)]
    found: list[tuple[Path, bool]] = []
    for folder, _dirs, files in os.walk(path):
        relative = Path(folder).relative_to(path)
        hidden_folder = any(part.startswith(".") for part in relative.parts)
        for name in files:
            if name.endswith(YAML_SUFFIXES):
                found.append((Path(folder) / name, hidden_folder or name.startswith(".")))
    return sorted(found)


def load_path(
    path: str | Path,
    stored: Iterable[StoredDocument] = (),
    *,
    sources: SecretSources | None = None,
) -> list[LoadedDocument]:
    """Every document under `path`; raises InvalidDesiredState listing all issues found."""
    return scan_path(path, stored, sources=sources).documents


def scan_path(
    path: str | Path,
    stored: Iterable[StoredDocument] = (),
    *,
    sources: SecretSources | None = None,
) -> Scan:
    """Like `load_path`, and says which files a directory scan skipped.

    `stored`: objects already stored; the checks across documents see them beside the files
    (a file's object replaces the stored one of the same kind and name), so a single-file
    apply is validated as the union it will make.

    `sources`: the operator's rules for secret sources; a reference they refuse is a problem
    at its field (None: references are not judged here, only when a value is read).
    """
    root = Path(path)
    if not root.exists():
        raise InvalidDesiredState([Issue(str(root), 0, 0, "", "no such file or directory")])
    scan = Scan()
    raws: list[_Raw] = []
    issues: list[Issue] = []
    for file, hidden in _yaml_files(root):
        if hidden:
            scan.skipped.append(Skipped(str(file), "in a hidden folder"))
            continue
        found, problems = _read_file(file)
        if root.is_dir() and not _meant_for_setpoint(file, found, problems):
            scan.skipped.append(Skipped(str(file), "not a setpoint.dev document"))
            continue
        raws.extend(found)
        issues.extend(problems)
    scan.documents = _finish(raws, stored, issues, sources)
    scan.warnings = _warnings(raws, scan.documents)
    return scan


def _warnings(raws: list[_Raw], documents: list[LoadedDocument]) -> list[Issue]:
    """A prod lane without health checks deploys unverified: allowed, and said."""
    by_key = {(raw.source, raw.key): raw for raw in raws}
    found: list[Issue] = []
    for loaded in documents:
        spec = loaded.document.spec
        raw = by_key.get((loaded.source, loaded.document.key))
        if not isinstance(spec, ProductSpec) or raw is None:
            continue
        for index, lane in enumerate(spec.lanes):
            if lane.is_prod and not lane.health_checks:
                found.append(
                    raw.issue(
                        ("spec", "lanes", index),
                        f"prod lane {lane.name!r} has no healthChecks: its deploys are not "
                        "verified (add healthChecks: [{path: /healthz}])",
                    )
                )
    return sorted(found)


def load_text(
    text: str,
    source: str = "<string>",
    stored: Iterable[StoredDocument] = (),
    *,
    sources: SecretSources | None = None,
) -> list[LoadedDocument]:
    issues: list[Issue] = []
    raws: list[_Raw] = []
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        issues.append(_too_big(source))
    else:
        raws, issues = _read_stream(text, source)
    return _finish(raws, stored, issues, sources)


def _finish(
    raws: list[_Raw],
    stored: Iterable[StoredDocument],
    issues: list[Issue],
    sources: SecretSources | None = None,
) -> list[LoadedDocument]:
    documents: list[LoadedDocument] = []
    for raw in raws:
        loaded, problems = _validate_document(raw, sources)
        issues.extend(problems)
        if loaded is not None:
            documents.append(loaded)
    issues.extend(_cross_document_issues(raws, _stored_raws(raws, stored)))
    if issues:
        raise InvalidDesiredState(issues)
    return documents


_MENTIONS_SETPOINT = re.compile(rb"setpoint\.dev|kind:\s*[\"']?(Product|RunnerPool|Host)\b")


def _meant_for_setpoint(file: Path, found: list[_Raw], problems: list[Issue]) -> bool:
    """Whether a file in a scanned directory is Setpoint's to judge: a file that cannot be
    read as YAML is, only if it mentions Setpoint (a Helm template is not)."""
    if not problems:
        return any(_is_setpoint(raw.data) for raw in found)
    try:
        with file.open("rb") as stream:
            head = stream.read(MAX_FILE_BYTES)
    except OSError:
        return True
    return bool(_MENTIONS_SETPOINT.search(head))


def _is_setpoint(data: Any) -> bool:
    """A document meant for Setpoint: a setpoint.dev apiVersion, or one of its kinds."""
    if not isinstance(data, Mapping):
        return False
    version, kind = data.get("apiVersion"), data.get("kind")
    return (isinstance(version, str) and version.startswith("setpoint.dev")) or kind in SPEC_MODELS


# Reading: bounded, and every failure located.


def _too_big(source: str) -> Issue:
    return Issue(source, 1, 1, "", f"larger than {MAX_FILE_BYTES // 1024} KiB: not desired state")


def _read_file(file: Path) -> tuple[list[_Raw], list[Issue]]:
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            return [], [_too_big(str(file))]
        data = file.read_bytes()
    except OSError as exc:
        return [], [Issue(str(file), 1, 1, "", f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data[: exc.start].decode("utf-8", "replace"))
        return [], [Issue(str(file), line, col, "", "not UTF-8 text: is this a YAML file?")]
    return _read_stream(text, str(file))


def _line_col(before: str) -> tuple[int, int]:
    """1-based line and column just after `before`."""
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def _read_stream(text: str, source: str) -> tuple[list[_Raw], list[Issue]]:
    try:
        loaded = list(bounded_yaml().load_all(text))
    except YAMLError as exc:
        return [], [_yaml_issue(exc, text, source)]
    except RecursionError:
        line, col = _deepest(text)
        return [], [Issue(source, line, col, "", "nested too deeply")]
    raws: list[_Raw] = []
    issues: list[Issue] = []
    for node in loaded:
        if node is None:
            continue  # an empty document between `---` separators
        try:
            data, positions = plain_with_positions(node)
        except TooLarge as exc:
            located = _Raw({}, _positions_of(node, exc.path), source)
            issues.append(located.issue(exc.path, exc.message))
            continue
        raws.append(_Raw(data, positions, source))
    return raws, issues


def _positions_of(node: Any, path: FieldPath) -> dict[FieldPath, Position]:
    """Where each step of `path` was written, read from the YAML tree without expanding it."""
    positions: dict[FieldPath, Position] = {(): (node.lc.line, node.lc.col)}
    for end, part in enumerate(path, start=1):
        try:
            line, col = node.lc.key(part) if isinstance(part, str) else node.lc.item(part)
            node = node[part]
        except (KeyError, IndexError, TypeError, AttributeError):
            break
        positions[path[:end]] = (line, col)
    return positions


_DUPLICATE_KEY = re.compile(r'found duplicate key "(.*?)" with value')


def _yaml_issue(exc: YAMLError, text: str, source: str) -> Issue:
    if isinstance(exc, ReaderError):
        line, col = _line_col(text[: exc.position])
        return Issue(source, line, col, "", "a control character or binary data: not YAML text")
    if not isinstance(exc, MarkedYAMLError):
        return Issue(source, 1, 1, "", "YAML syntax: cannot be read")
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if isinstance(exc, InputBound):
        return Issue(source, line, col, "", str(exc.problem))
    if isinstance(exc, DuplicateKeyError):
        # ruamel's message quotes both values; the key alone is what helps, and is safe.
        found = _DUPLICATE_KEY.search(str(exc.problem))
        key = found.group(1) if found else "?"
        return Issue(source, line, col, "", f"duplicate key {key!r}: remove one of them")
    return Issue(source, line, col, "", f"YAML syntax: {exc.problem or 'cannot be read'}")


def _deepest(text: str) -> tuple[int, int]:
    """Where brackets or indentation first go deeper than any document needs."""
    depth = 0
    for index, char in enumerate(text):
        depth += (char in "[{") - (char in "]}")
        if depth > MAX_DEPTH:
            return _line_col(text[:index])
    lines = text.splitlines() or [""]
    indents = [len(line) - len(line.lstrip(" ")) for line in lines]
    return indents.index(max(indents)) + 1, max(indents) + 1


# One document: envelope, fields, rules across fields, the plain-env secret check.


def _validate_document(
    raw: _Raw, sources: SecretSources | None
) -> tuple[LoadedDocument | None, list[Issue]]:
    data = raw.data
    if not isinstance(data, dict):
        return None, [
            raw.issue((), "a document must be a mapping with apiVersion, kind, metadata, spec")
        ]
    issues = [raw.issue(path, message) for path, message in _envelope_problems(data)]
    kind = data.get("kind")
    model = SPEC_MODELS.get(kind) if isinstance(kind, str) else None
    metadata = _validated(Metadata, data.get("metadata"), ("metadata",), raw, issues)
    spec = _validated(model, data.get("spec"), ("spec",), raw, issues) if model else None
    issues.extend(raw.issue(path, message) for path, message in _rule_problems(data, sources))
    if issues or metadata is None or spec is None:
        return None, issues
    issues.extend(raw.issue(path, message) for path, message in _spec_issues(metadata.name, spec))
    if issues:
        return None, issues
    document = Document.model_validate(
        {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
    )
    return LoadedDocument(document, raw.source, raw.line), []


def _spec_issues(name: str, spec: Any) -> list[tuple[FieldPath, str]]:
    """Checks of the whole spec that no single field can make (after it validated)."""
    return product_issues(name, spec) if isinstance(spec, ProductSpec) else []


def _envelope_problems(data: dict[str, Any]) -> Iterator[tuple[FieldPath, str]]:
    for required in _ENVELOPE:
        if required not in data:
            yield (), f"missing required field {required!r}"
    for extra in sorted(set(data) - set(_ENVELOPE)):
        yield (extra,), "unknown field" + hint.unknown_field(extra, _ENVELOPE)
    if "apiVersion" in data and data["apiVersion"] != API_VERSION:
        yield ("apiVersion",), f"expected {API_VERSION!r}"
    kind = data.get("kind")
    if "kind" in data and (not isinstance(kind, str) or kind not in SPEC_MODELS):
        yield ("kind",), hint.unknown_kind(kind, sorted(SPEC_MODELS))


def _rule_problems(
    data: dict[str, Any], sources: SecretSources | None
) -> Iterator[tuple[FieldPath, str]]:
    """The rules across fields, the secret check and the secret sources, on the data as
    written."""
    kind, spec = data.get("kind"), data.get("spec")
    rules = SPEC_RULES.get(kind) if isinstance(kind, str) else None
    if rules is None or not isinstance(spec, Mapping):
        return
    for path, message in rules(spec):
        yield ("spec", *path), message
    if kind == "Product":
        not_secret = not_secret_keys(_map(data.get("metadata")).get("annotations"))
        for path, message in product_env_rules(spec, not_secret):
            yield ("spec", *path), message
    if kind == "Product" and sources is not None:
        for path, message in product_source_problems(spec, sources):
            yield ("spec", *path), message


def _validated(model: Any, value: Any, prefix: FieldPath, raw: _Raw, issues: list[Issue]) -> Any:
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            if isinstance(error.get("ctx", {}).get("error"), RuleError):
                continue  # reported from the rule itself, at its own field
            loc = tuple(error["loc"])
            issues.append(raw.issue((*prefix, *loc), hint.message(error, model, loc)))
        return None


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if part == "<value>":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# Across documents: what is given, beside what is stored.


def _stored_raws(raws: list[_Raw], stored: Iterable[StoredDocument]) -> list[_Raw]:
    given = {raw.key for raw in raws if isinstance(raw.data, Mapping)}
    return [
        _Raw(
            {"kind": s.kind, "metadata": {"name": s.name}, "spec": s.spec},
            {},
            s.source,
            stored=True,
        )
        for s in stored
        if f"{s.kind}/{s.name}" not in given
    ]


def _cross_document_issues(raws: list[_Raw], stored: list[_Raw]) -> list[Issue]:
    documents = [raw for raw in raws if isinstance(raw.data, Mapping)]
    issues = list(_duplicates(documents))
    issues.extend(_shared_domains([*stored, *documents]))
    issues.extend(_shared_service_names([*stored, *documents]))
    issues.extend(_undeclared_hosts([*stored, *documents]))
    return issues


def _duplicates(documents: list[_Raw]) -> Iterator[Issue]:
    seen: dict[str, _Raw] = {}
    for raw in documents:
        key = raw.key
        if key is None:
            continue
        if key in seen:
            first = seen[key]
            yield raw.issue(
                ("metadata", "name"),
                f"{key} is declared twice (first at {first.source}:{first.line})",
            )
        else:
            seen[key] = raw


def _routes(raw: _Raw) -> Iterator[tuple[FieldPath, str, str]]:
    """(path of the host field, host+path, owning lane) for every domain a Product routes."""
    if raw.data.get("kind") != "Product":
        return
    name = _map(raw.data.get("metadata")).get("name")
    for index, lane in enumerate(_list(_map(raw.data.get("spec")).get("lanes"))):
        lane = _map(lane)
        for number, domain in enumerate(_list(lane.get("domains"))):
            domain = _map(domain)
            host, path = domain.get("host"), domain.get("path", "/")
            if isinstance(host, str) and isinstance(path, str):
                where = ("spec", "lanes", index, "domains", number, "host")
                yield where, f"{host}{path}", f"{name}/{lane.get('name')}"


def _shared_domains(documents: list[_Raw]) -> Iterator[Issue]:
    """Two lanes routing the same host and path would fight over it on every pass."""
    claimed: dict[str, str] = {}
    stored_claims: dict[str, str | None] = {}  # route -> the stored lane claiming it
    for raw in documents:  # the stored come first: a file's lane is the one that moves
        for where, route, owner in _routes(raw):
            if route not in claimed:
                claimed[route] = f"{owner} (stored, from {raw.source})" if raw.stored else owner
                stored_claims[route] = owner if raw.stored else None
            elif not raw.stored:
                said = f"{route} is already routed by lane {claimed[route]}"
                yield raw.issue(where, said + _rename_hint(stored_claims[route], owner))


def _rename_hint(stored_owner: str | None, owner: str) -> str:
    """A file's lane taking a route a stored lane has looks like a rename: say the way."""
    if stored_owner is None or stored_owner == owner:
        return ""
    return (
        f". If {owner} renames {stored_owner}, apply with --prune (the stored object these "
        f"files no longer declare is removed, and one plan moves the domain to the new lane), "
        f"adding `renamedFrom: {stored_owner}` to the lane to keep its Dokploy service"
    )


def _undeclared_hosts(documents: list[_Raw]) -> Iterator[Issue]:
    hosts = {
        _map(raw.data.get("metadata")).get("name")
        for raw in documents
        if raw.data.get("kind") == "Host"
    }
    # `validate` reads files only; `desired apply` also sees what is stored: say which.
    looked_in = (
        "these files or the stored desired state"
        if any(raw.stored for raw in documents)
        else "these files"
    )
    for raw in documents:
        if raw.stored or raw.data.get("kind") != "RunnerPool":
            continue
        host = _map(raw.data.get("spec")).get("host")
        if isinstance(host, str) and host not in hosts:
            yield raw.issue(
                ("spec", "host"), f"host {host!r} is not declared as a Host (in {looked_in})"
            )


def _shared_service_names(documents: list[_Raw]) -> Iterator[Issue]:
    """Two lanes mapping to one Dokploy service name (`orca-web` lane `testing` and `orca`
    lane `web-testing`) would each take the other's service for an unowned clash."""
    claimed: dict[str, str] = {}
    seen: set[str | None] = set()
    for raw in documents:  # the stored come first: a file's lane is the one that moves
        if raw.data.get("kind") != "Product" or raw.key in seen:
            continue  # a document declared twice is reported as such, not as a clash
        seen.add(raw.key)
        product = _map(raw.data.get("metadata")).get("name")
        for index, lane in enumerate(_list(_map(raw.data.get("spec")).get("lanes"))):
            lane_name = _map(lane).get("name")
            if not isinstance(product, str) or not isinstance(lane_name, str):
                continue
            name, owner = service_name(product, lane_name), f"{product}/{lane_name}"
            if name not in claimed:
                claimed[name] = f"{owner} (stored, from {raw.source})" if raw.stored else owner
            elif not raw.stored:
                yield raw.issue(
                    ("spec", "lanes", index, "name"),
                    f"lane {owner} maps to the Dokploy service name {name!r}, which lane "
                    f"{claimed[name]} already maps to; rename one of them",
                )


def conflicts_with_stored(given: list[LoadedDocument], stored: list[LoadedDocument]) -> list[Issue]:
    """Routes and service names of `given` that stored objects (not replaced by `given`)
    already claim: the store refuses them whoever calls it, not only `desired apply`."""
    replaced = {loaded.document.key for loaded in given}
    kept = [
        _raw_of(loaded, stored=True) for loaded in stored if loaded.document.key not in replaced
    ]
    mine = [_raw_of(loaded) for loaded in given]
    return [*_shared_domains([*kept, *mine]), *_shared_service_names([*kept, *mine])]


def _raw_of(loaded: LoadedDocument, *, stored: bool = False) -> _Raw:
    document = loaded.document
    data = {
        "kind": document.kind,
        "metadata": {"name": document.name},
        "spec": document.spec_dict(),
    }
    return _Raw(data, {(): (max(loaded.line - 1, 0), 0)}, loaded.source, stored=stored)
