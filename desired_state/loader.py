"""Load desired-state YAML from a file or a directory, reporting every problem with its place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from desired_state.document import API_VERSION, SPEC_MODELS, Document, Metadata
from desired_state.issues import InvalidDesiredState, Issue
from desired_state.positions import Path as FieldPath
from desired_state.positions import Position, nearest, plain_with_positions
from desired_state.product import ProductSpec
from desired_state.product_checks import product_issues, service_name

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedDocument:
    document: Document
    source: str  # file path as given, for messages and the stored source column
    line: int


def yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    return [path]


def load_path(path: str | Path) -> list[LoadedDocument]:
    """Every document under `path`; raises InvalidDesiredState listing all issues found."""
    root = Path(path)
    if not root.exists():
        raise InvalidDesiredState([Issue(str(root), 0, 0, "", "no such file or directory")])
    documents: list[LoadedDocument] = []
    issues: list[Issue] = []
    for file in yaml_files(root):
        found, problems = _load_file(file)
        documents.extend(found)
        issues.extend(problems)
    issues.extend(_cross_document_issues(documents))
    if issues:
        raise InvalidDesiredState(issues)
    return documents


def load_text(text: str, source: str = "<string>") -> list[LoadedDocument]:
    documents, issues = _load_stream(text, source)
    issues.extend(_cross_document_issues(documents))
    if issues:
        raise InvalidDesiredState(issues)
    return documents


def _load_file(file: Path) -> tuple[list[LoadedDocument], list[Issue]]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Issue(str(file), 0, 0, "", f"cannot read: {exc}")]
    return _load_stream(text, str(file))


def _load_stream(text: str, source: str) -> tuple[list[LoadedDocument], list[Issue]]:
    yaml = YAML(typ="rt")
    try:
        raw_documents = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return [], [Issue(source, line, col, "", f"YAML syntax: {exc.problem or exc}")]
    documents: list[LoadedDocument] = []
    issues: list[Issue] = []
    for raw in raw_documents:
        if raw is None:
            continue  # an empty document between `---` separators
        data, positions = plain_with_positions(raw)
        loaded, problems = _validate_document(data, positions, source)
        issues.extend(problems)
        if loaded is not None:
            documents.append(loaded)
    return documents, issues


def _validate_document(
    data: Any, positions: dict[FieldPath, Position], source: str
) -> tuple[LoadedDocument | None, list[Issue]]:
    def issue(path: FieldPath, message: str) -> Issue:
        line, col = nearest(positions, path)
        return Issue(source, line + 1, col + 1, _dotted(path), message)

    if not isinstance(data, dict):
        return None, [
            issue((), "a document must be a mapping with apiVersion, kind, metadata, spec")
        ]
    issues: list[Issue] = []
    for required in ("apiVersion", "kind", "metadata", "spec"):
        if required not in data:
            issues.append(issue((), f"missing required field {required!r}"))
    for extra in sorted(set(data) - {"apiVersion", "kind", "metadata", "spec"}):
        issues.append(issue((extra,), "unknown field"))
    if "apiVersion" in data and data["apiVersion"] != API_VERSION:
        issues.append(issue(("apiVersion",), f"expected {API_VERSION!r}"))
    kind = data.get("kind")
    model = SPEC_MODELS.get(kind) if isinstance(kind, str) else None
    if "kind" in data and model is None:
        issues.append(
            issue(("kind",), f"unknown kind {kind!r}; expected one of {sorted(SPEC_MODELS)}")
        )

    metadata = _validated(Metadata, data.get("metadata"), ("metadata",), issue, issues)
    spec = _validated(model, data.get("spec"), ("spec",), issue, issues) if model else None
    if issues or metadata is None or spec is None:
        return None, issues
    issues.extend(issue(path, message) for path, message in _spec_issues(metadata.name, spec))
    if issues:
        return None, issues
    document = Document.model_validate(
        {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
    )
    line = nearest(positions, ())[0] + 1
    return LoadedDocument(document, source, line), []


def _spec_issues(name: str, spec: Any) -> list[tuple[FieldPath, str]]:
    """Checks of the whole spec that no single field can make (after it validated)."""
    return product_issues(name, spec) if isinstance(spec, ProductSpec) else []


def _validated(model: Any, value: Any, prefix: FieldPath, issue: Any, issues: list[Issue]) -> Any:
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path = (*prefix, *error["loc"])
            # A value-level error inside a mapping/list points at the value, not its key.
            message = _message(error)
            issues.append(issue(path, message))
        return None


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        # Name the type received, never the value: it could be a secret pasted in the wrong place.
        message += f" (got {_yaml_type(error.get('input'))})"
    return message


def _yaml_type(value: Any) -> str:
    names = {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        list: "list",
        dict: "mapping",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _cross_document_issues(documents: list[LoadedDocument]) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[str, LoadedDocument] = {}
    for loaded in documents:
        key = loaded.document.key
        if key in seen:
            first = seen[key]
            issues.append(
                Issue(
                    loaded.source,
                    loaded.line,
                    1,
                    "metadata.name",
                    f"{key} is declared twice (first at {first.source}:{first.line})",
                )
            )
        else:
            seen[key] = loaded
    issues.extend(_shared_domains(documents))
    issues.extend(_shared_service_names(documents))
    hosts = {d.document.name for d in documents if d.document.kind == "Host"}
    for loaded in documents:
        spec = loaded.document.spec
        if loaded.document.kind == "RunnerPool" and getattr(spec, "host", None) not in hosts:
            issues.append(
                Issue(
                    loaded.source,
                    loaded.line,
                    1,
                    "spec.host",
                    f"host {getattr(spec, 'host', None)!r} is not declared as a Host",
                )
            )
    return issues


def _shared_domains(documents: list[LoadedDocument]) -> list[Issue]:
    """Two lanes routing the same host and path would fight over it on every pass."""
    issues: list[Issue] = []
    claimed: dict[str, str] = {}
    for loaded in documents:
        spec = loaded.document.spec
        if not isinstance(spec, ProductSpec):
            continue
        for index, lane in enumerate(spec.lanes):
            for domain in lane.domains:
                route = f"{domain.host}{domain.path}"
                owner = f"{loaded.document.name}/{lane.name}"
                if route in claimed:
                    issues.append(
                        Issue(
                            loaded.source,
                            loaded.line,
                            1,
                            f"spec.lanes[{index}].domains",
                            f"{route} is already routed by lane {claimed[route]}",
                        )
                    )
                else:
                    claimed[route] = owner
    return issues


def _shared_service_names(documents: list[LoadedDocument]) -> list[Issue]:
    """Two lanes mapping to one Dokploy service name (`orca-web` lane `testing` and `orca`
    lane `web-testing`) would each take the other's service for an unowned clash."""
    issues: list[Issue] = []
    claimed: dict[str, str] = {}
    for loaded in documents:
        spec = loaded.document.spec
        if not isinstance(spec, ProductSpec):
            continue
        for index, lane in enumerate(spec.lanes):
            name = service_name(loaded.document.name, lane.name)
            owner = f"{loaded.document.name}/{lane.name}"
            if name in claimed:
                issues.append(
                    Issue(
                        loaded.source,
                        loaded.line,
                        1,
                        f"spec.lanes[{index}].name",
                        f"lane {owner} maps to the Dokploy service name {name!r}, which lane "
                        f"{claimed[name]} already maps to; rename one of them",
                    )
                )
            else:
                claimed[name] = owner
    return issues


def conflicts_with_stored(given: list[LoadedDocument], stored: list[LoadedDocument]) -> list[Issue]:
    """Routes and service names of `given` that stored objects (not replaced by `given`)
    already claim: a single-file `desired apply` is checked against the whole stored fleet."""
    replaced = {loaded.document.key for loaded in given}
    kept = [loaded for loaded in stored if loaded.document.key not in replaced]
    # Stored objects come first, so a clash is reported at the given document that makes it.
    found = [*_shared_domains([*kept, *given]), *_shared_service_names([*kept, *given])]
    given_places = {(loaded.source, loaded.line) for loaded in given}
    return [issue for issue in found if (issue.file, issue.line) in given_places]
