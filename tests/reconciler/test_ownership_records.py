"""The ownership registry as an apply writes it: claims, facts and releases, in any order and
any grouping into transactions, leave exactly the objects and facts they said."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from reconciler.core.outcomes import Claim, Facts, ObjectRef
from reconciler.records import audit, ownership
from reconciler.records.database import session_scope, table_of

# Two ids shared across types and providers: a row is found by all three parts of its ref.
REFS = [
    ObjectRef(provider, object_type, object_id)
    for provider in ("dokploy", "github")
    for object_type in ("application", "project")
    for object_id in ("id-1", "id-2")
]
FACTS = st.dictionaries(st.sampled_from(["config_hash", "health", "env_keys"]), st.integers(0, 3))


@dataclass(frozen=True)
class Change:
    what: str  # claim | facts | release
    ref: ObjectRef
    lane: str
    facts: dict[str, Any]
    protected: bool


CHANGES = st.builds(
    Change,
    what=st.sampled_from(["claim", "facts", "release"]),
    ref=st.sampled_from(REFS),
    lane=st.sampled_from(["product:shop/prod", "product:shop/testing"]),
    facts=FACTS,
    protected=st.booleans(),
)


def _expected(changes: list[Change]) -> dict[ObjectRef, tuple[str, bool, dict[str, Any]]]:
    """What the registry should hold: lane, protected and facts by ref."""
    held: dict[ObjectRef, tuple[str, bool, dict[str, Any]]] = {}
    for change in changes:
        if change.what == "claim":
            known = held[change.ref][2] if change.ref in held else {}
            held[change.ref] = (change.lane, change.protected, {**known, **change.facts})
        elif change.what == "facts" and change.ref in held:
            lane, protected, known = held[change.ref]
            held[change.ref] = (lane, protected, {**known, **change.facts})
        elif change.what == "release":
            held.pop(change.ref, None)
    return held


def _apply(engine: Engine, changes: list[Change], at: datetime) -> None:
    with audit.transaction(engine) as session:
        for change in changes:
            ownership.apply_changes(
                session,
                kind="product",
                lane=change.lane,
                claims=[Claim(change.ref, change.ref.object_id, change.protected, change.facts)]
                if change.what == "claim"
                else [],
                facts=[Facts(change.ref, change.facts)] if change.what == "facts" else [],
                releases=[change.ref] if change.what == "release" else [],
                now=at,
            )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(CHANGES, max_size=12), cut=st.integers(0, 12))
def test_any_sequence_of_changes_leaves_what_it_said(
    engine: Engine, changes: list[Change], cut: int
) -> None:
    with session_scope(engine) as session:
        session.connection().execute(table_of(ownership.OwnedObject).delete())
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    # Changes in one transaction see each other, as a journal commit's units do.
    _apply(engine, changes[:cut], at)
    _apply(engine, changes[cut:], at + timedelta(seconds=1))
    held = {o.ref: (o.lane, o.protected, dict(o.facts)) for o in ownership.snapshot(engine).objects}
    assert held == _expected(changes)
    assert all(o.kind == "product" and not o.adopted for o in ownership.snapshot(engine).objects)
