"""The desired state as the engine reads it: validated objects from the store, and a revision."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from desired_state.base import SpecModel
from desired_state.document import SPEC_MODELS, Document
from reconciler.records.database import session_scope
from reconciler.records.desired import StoredVersion, list_specs, list_versions


@dataclass(frozen=True)
class DesiredFleet:
    documents: dict[str, Document]  # "Product/shop" -> document
    generations: dict[str, int]
    revision: str  # changes whenever any stored spec does

    def of_kind(self, kind: str) -> list[Document]:
        return [d for key, d in sorted(self.documents.items()) if d.kind == kind]


def revision_of(rows: Sequence[StoredVersion]) -> str:
    parts = sorted(f"{r.kind}/{r.name}@{r.spec_hash}" for r in rows)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_fleet(engine: Engine) -> DesiredFleet:
    """The stored desired state, each object validated; an object whose spec has not changed
    since the last load is not parsed again (a pass loads the fleet every time)."""
    with session_scope(engine) as session:
        versions = list_versions(session)
        parsed = _PARSED.reuse(versions)
        if parsed is None:  # something new or changed: read the specs (and versions) again
            stored = list_specs(session)
            versions = [version for version, _ in stored]
            parsed = _PARSED.parse(stored)
    return DesiredFleet(
        documents=parsed,
        generations={version.key: version.generation for version in versions},
        revision=revision_of(versions),
    )


class _ParsedDocuments:
    """The documents of the newest load, by key and spec hash: a document is a frozen,
    validated value of its kind, name and spec, so the same (kind, name, spec hash) may be
    handed out again. Only the newest load is kept (the cache is as large as the fleet)."""

    def __init__(self) -> None:
        self._by_version: dict[tuple[str, str], Document] = {}

    def reuse(self, versions: Sequence[StoredVersion]) -> dict[str, Document] | None:
        """The documents of `versions`, if every one was parsed before; None otherwise."""
        known = self._by_version
        documents: dict[str, Document] = {}
        for version in versions:
            document = known.get((version.key, version.spec_hash))
            if document is None:
                return None
            documents[version.key] = document
        return documents

    def parse(self, stored: Sequence[tuple[StoredVersion, dict[str, Any]]]) -> dict[str, Document]:
        known = self._by_version
        documents: dict[str, Document] = {}
        for version, spec in stored:
            document = known.get((version.key, version.spec_hash))
            documents[version.key] = document or _parse(version, spec)
        # one assignment: a load in another thread sees the old mapping or the new one
        self._by_version = {
            (version.key, version.spec_hash): documents[version.key] for version, _ in stored
        }
        return documents


_PARSED = _ParsedDocuments()


def _parse(version: StoredVersion, spec: dict[str, Any]) -> Document:
    return Document.model_validate(
        {
            "apiVersion": "setpoint.dev/v1",
            "kind": version.kind,
            "metadata": {"name": version.name},
            "spec": _spec_model(version.kind).model_validate(spec),
        }
    )


def _spec_model(kind: str) -> type[SpecModel]:
    return SPEC_MODELS[kind]
