"""Stored desired state: one row per declared object, with a generation per spec change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

from desired_state.loader import LoadedDocument
from reconciler.errors import EmptyPrune
from reconciler.records.columns import JSONDocument, UTCDateTime, utcnow


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
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


Outcome = Literal["created", "changed", "unchanged", "removed", "would_remove"]


@dataclass
class ApplyReport:
    """What `desired apply` did to each object, in a stable order."""

    entries: list[tuple[str, Outcome, int]] = field(default_factory=list)

    def add(self, key: str, outcome: Outcome, generation: int) -> None:
        self.entries.append((key, outcome, generation))

    def count(self, outcome: Outcome) -> int:
        return sum(1 for _, o, _ in self.entries if o == outcome)

    @property
    def changed_anything(self) -> bool:
        return any(o in ("created", "changed", "removed") for _, o, _ in self.entries)


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
            report.add(key, "created", 1)
        elif row.spec_hash != loaded.document.spec_hash():
            report.add(key, "changed", row.generation + 1)
        else:
            report.add(key, "unchanged", row.generation)
    for key in sorted(set(existing) - declared):
        report.add(key, "removed" if prune else "would_remove", existing[key].generation)
    return report


def apply_documents(
    session: Session, documents: list[LoadedDocument], *, prune: bool
) -> ApplyReport:
    """Store documents; the generation moves only when the spec hash does.

    Objects in the database that the documents no longer declare are removed only with
    `prune`; otherwise they are reported as `would_remove`. Pruning against no documents at
    all is refused: it would empty the store.
    """
    if prune and not documents:
        raise EmptyPrune("prune with no documents would remove every stored object")
    report = ApplyReport()
    existing = {row.key: row for row in session.exec(select(DesiredObject)).all()}
    declared: set[str] = set()
    for loaded in sorted(documents, key=lambda d: d.document.key):
        document = loaded.document
        declared.add(document.key)
        digest = document.spec_hash()
        row = existing.get(document.key)
        if row is None:
            row = DesiredObject(
                kind=document.kind,
                name=document.name,
                spec=document.spec_dict(),
                spec_hash=digest,
                source_file=loaded.source,
            )
            session.add(row)
            report.add(document.key, "created", 1)
        elif row.spec_hash != digest:
            row.spec = document.spec_dict()
            row.spec_hash = digest
            row.generation += 1
            row.source_file = loaded.source
            row.updated_at = utcnow()
            session.add(row)
            report.add(document.key, "changed", row.generation)
        else:
            if row.source_file != loaded.source:
                row.source_file = loaded.source  # moved between files: not a spec change
                session.add(row)
            report.add(document.key, "unchanged", row.generation)
    for key in sorted(set(existing) - declared):
        row = existing[key]
        if prune:
            session.delete(row)
            report.add(key, "removed", row.generation)
        else:
            report.add(key, "would_remove", row.generation)
    session.flush()
    return report


def list_objects(session: Session, kind: str | None = None) -> list[DesiredObject]:
    query = select(DesiredObject).order_by(DesiredObject.kind, DesiredObject.name)
    if kind:
        query = query.where(DesiredObject.kind == kind)
    return list(session.exec(query).all())


def get_object(session: Session, kind: str, name: str) -> DesiredObject | None:
    query = select(DesiredObject).where(DesiredObject.kind == kind, DesiredObject.name == name)
    return session.exec(query).first()
