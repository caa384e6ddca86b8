"""The desired state as the engine reads it: validated objects from the store, and a revision."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from desired_state.base import SpecModel
from desired_state.document import SPEC_MODELS, Document
from reconciler.records.database import session_scope
from reconciler.records.desired import DesiredObject, list_objects


@dataclass(frozen=True)
class DesiredFleet:
    documents: dict[str, Document]  # "Product/shop" -> document
    generations: dict[str, int]
    revision: str  # changes whenever any stored spec does

    def of_kind(self, kind: str) -> list[Document]:
        return [d for key, d in sorted(self.documents.items()) if d.kind == kind]


def revision_of(rows: list[DesiredObject]) -> str:
    parts = sorted(f"{r.kind}/{r.name}@{r.spec_hash}" for r in rows)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_fleet(engine: Engine) -> DesiredFleet:
    with session_scope(engine) as session:
        rows = list_objects(session)
    documents = {
        row.key: Document.model_validate(
            {
                "apiVersion": "setpoint.dev/v1",
                "kind": row.kind,
                "metadata": {"name": row.name},
                "spec": _spec_model(row.kind).model_validate(row.spec),
            }
        )
        for row in rows
    }
    return DesiredFleet(
        documents=documents,
        generations={row.key: row.generation for row in rows},
        revision=revision_of(rows),
    )


def _spec_model(kind: str) -> type[SpecModel]:
    return SPEC_MODELS[kind]
