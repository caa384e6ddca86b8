"""Stored desired state: one row per declared object, with a generation per spec change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from desired_state.document import FOUND_KINDS, SPEC_MODELS, Document
from desired_state.issues import InvalidDesiredState
from desired_state.loader import LoadedDocument, conflicts_with_stored
from reconciler.errors import EmptyPrune
from reconciler.records.columns import JSONDocument, UTCDateTime
from reconciler.records.database import table_of


class DesiredObject(SQLModel, table=True):
    __tablename__ = "desired_objects"
    __table_args__ = (sa.UniqueConstraint("kind", "name", name="uq_desired_objects_kind_name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    name: str = Field(max_length=128)
    spec: dict[str, Any] = Field(sa_type=JSONDocument)
    spec_hash: str = Field(max_length=64)
    generation: int = Field(default=1)
    source_file: str = Field(max_length=1024)
    # Set by the writer from its clock (the runtime's), never by a default.
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


class DocumentChange(StrEnum):
    """What storing desired state did to one object."""

    created = "created"
    changed = "changed"
    unchanged = "unchanged"
    removed = "removed"
    would_remove = "would_remove"  # gone from the files, kept: `--prune` was not given

    @property
    def is_change(self) -> bool:
        return self in (DocumentChange.created, DocumentChange.changed, DocumentChange.removed)


@dataclass
class ApplyReport:
    """What `desired apply` did to each object, in a stable order."""

    entries: list[tuple[str, DocumentChange, int]] = field(default_factory=list)

    def add(self, key: str, outcome: DocumentChange, generation: int) -> None:
        self.entries.append((key, outcome, generation))

    def count(self, outcome: DocumentChange) -> int:
        return sum(1 for _, o, _ in self.entries if o == outcome)

    @property
    def changed_anything(self) -> bool:
        return any(o.is_change for _, o, _ in self.entries)


def preview_documents(
    rows: list[DesiredObject], documents: list[LoadedDocument], *, prune: bool
) -> ApplyReport:
    """What `apply_documents` would do to the stored `rows`, writing nothing."""
    report = ApplyReport()
    existing = {row.key: row for row in rows}
    declared: set[str] = set()
    for loaded in sorted(documents, key=lambda d: d.document.key):
        key = loaded.document.key
        declared.add(key)
        row = existing.get(key)
        if row is None:
            report.add(key, DocumentChange.created, 1)
        elif row.spec_hash != loaded.document.spec_hash():
            report.add(key, DocumentChange.changed, row.generation + 1)
        else:
            report.add(key, DocumentChange.unchanged, row.generation)
    for key in _undeclared(existing, declared):
        report.add(
            key,
            DocumentChange.removed if prune else DocumentChange.would_remove,
            existing[key].generation,
        )
    return report


def _undeclared(existing: dict[str, DesiredObject], declared: set[str]) -> list[str]:
    """Stored objects the documents no longer declare, but never the ones Setpoint found
    itself (preview anchors): those are not the operator's to remove by leaving them out."""
    return sorted(
        key for key, row in existing.items() if key not in declared and row.kind not in FOUND_KINDS
    )


def apply_documents(
    session: Session, documents: list[LoadedDocument], *, prune: bool, now: datetime
) -> ApplyReport:
    """Store documents as of `now`; the generation moves only when the spec hash does.

    Objects in the database that the documents no longer declare are removed only with
    `prune`; otherwise they are reported as `would_remove`. Objects Setpoint found itself
    (`FOUND_KINDS`: preview anchors) are neither: discovery and webhooks own them. Pruning against no documents at
    all is refused: it would empty the store. Documents whose routes or Dokploy service names
    clash with stored objects they do not replace (and that stay) are refused with
    InvalidDesiredState, and nothing is stored.
    """
    if prune and not documents:
        raise EmptyPrune("prune with no documents would remove every stored object")
    report = ApplyReport()
    existing = {row.key: row for row in session.exec(select(DesiredObject)).all()}
    stays = [_as_loaded(row) for row in existing.values() if not prune or row.kind in FOUND_KINDS]
    clashes = conflicts_with_stored(documents, [d for d in stays if d is not None])
    if clashes:
        raise InvalidDesiredState(clashes)
    declared: set[str] = set()
    for loaded in sorted(documents, key=lambda d: d.document.key):
        declared.add(loaded.document.key)
        row = existing.get(loaded.document.key)
        _upsert(session, row, loaded.document, loaded.source, report, now)
    for key in _undeclared(existing, declared):
        row = existing[key]
        if prune:
            session.delete(row)
            report.add(key, DocumentChange.removed, row.generation)
        else:
            report.add(key, DocumentChange.would_remove, row.generation)
    session.flush()
    return report


def store_found(
    session: Session, documents: Sequence[Document], source: str, *, now: datetime
) -> ApplyReport:
    """Store objects Setpoint found itself (preview anchors from discovery): created or
    updated like `desired apply` would, never pruning anything else."""
    report = ApplyReport()
    for document in sorted(documents, key=lambda d: d.key):
        row = session.exec(
            select(DesiredObject).where(
                DesiredObject.kind == document.kind, DesiredObject.name == document.name
            )
        ).first()
        _upsert(session, row, document, source, report, now)
    session.flush()
    return report


def store_revision(session: Session, document: Document, source: str, *, now: datetime) -> int:
    """Store a new revision of one object an engine command wrote (a rollback, a promotion),
    as `desired apply` would store it: refused with InvalidDesiredState when its routes or
    service names clash with another stored object. Returns the object's generation (moved
    only when its spec did)."""
    stored = [
        _as_loaded(row)
        for row in session.exec(select(DesiredObject)).all()
        if row.key != document.key
    ]
    clashes = conflicts_with_stored(
        [LoadedDocument(document, source, 0)], [d for d in stored if d is not None]
    )
    if clashes:
        raise InvalidDesiredState(clashes)
    report = ApplyReport()
    row = get_object(session, document.kind, document.name)
    _upsert(session, row, document, source, report, now)
    session.flush()
    return report.entries[0][2]


def _upsert(
    session: Session,
    row: DesiredObject | None,
    document: Document,
    source: str,
    report: ApplyReport,
    now: datetime,
) -> None:
    """Create or update one object as of `now`; the generation moves only when the spec
    hash does, and `updated_at` with it."""
    digest = document.spec_hash()
    if row is None:
        row = DesiredObject(
            kind=document.kind,
            name=document.name,
            spec=document.spec_dict(),
            spec_hash=digest,
            source_file=source,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        report.add(document.key, DocumentChange.created, 1)
    elif row.spec_hash != digest:
        row.spec = document.spec_dict()
        row.spec_hash = digest
        row.generation += 1
        row.source_file = source
        row.updated_at = now
        session.add(row)
        report.add(document.key, DocumentChange.changed, row.generation)
    else:
        if row.source_file != source:
            row.source_file = source  # moved between files: not a spec change
            session.add(row)
        report.add(document.key, DocumentChange.unchanged, row.generation)


def _as_loaded(row: DesiredObject) -> LoadedDocument | None:
    """A stored object as a document (line 0: it is in no file being read); None if it no
    longer validates, which the fleet reports on its own."""
    try:
        spec = SPEC_MODELS[row.kind].model_validate(row.spec)
        document = Document.model_validate(
            {
                "apiVersion": "setpoint.dev/v1",
                "kind": row.kind,
                "metadata": {"name": row.name},
                "spec": spec,
            }
        )
    except (KeyError, ValueError):
        return None
    return LoadedDocument(document, f"stored {row.key} (from {row.source_file})", 0)


def list_objects(session: Session, kind: str | None = None) -> list[DesiredObject]:
    query = select(DesiredObject).order_by(DesiredObject.kind, DesiredObject.name)
    if kind:
        query = query.where(DesiredObject.kind == kind)
    return list(session.exec(query).all())


@dataclass(frozen=True)
class StoredVersion:
    """Which version of an object is stored: enough to tell whether a parse is still good."""

    kind: str
    name: str
    spec_hash: str
    generation: int

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def list_versions(session: Session) -> list[StoredVersion]:
    """Every stored object's version, without its spec (ordered as `list_objects`)."""
    table = table_of(DesiredObject)
    query = sa.select(table.c.kind, table.c.name, table.c.spec_hash, table.c.generation)
    return [
        StoredVersion(*row) for row in session.execute(query.order_by(table.c.kind, table.c.name))
    ]


def list_specs(session: Session) -> list[tuple[StoredVersion, dict[str, Any]]]:
    """Every stored object's version and spec, as plain data (ordered as `list_objects`)."""
    table = table_of(DesiredObject)
    query = sa.select(
        table.c.kind, table.c.name, table.c.spec_hash, table.c.generation, table.c.spec
    ).order_by(table.c.kind, table.c.name)
    return [(StoredVersion(*row[:4]), row[4]) for row in session.execute(query)]


def get_object(session: Session, kind: str, name: str) -> DesiredObject | None:
    query = select(DesiredObject).where(DesiredObject.kind == kind, DesiredObject.name == name)
    return session.exec(query).first()


def version(session: Session) -> tuple[int, int, object]:
    """A cheap token that changes whenever the stored desired state does: how many objects,
    the sum of their generations, and the newest write."""
    table = table_of(DesiredObject)
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(table.c.generation), 0),
            sa.func.max(table.c.updated_at),
        )
    ).one()
    return int(row[0]), int(row[1]), row[2]
