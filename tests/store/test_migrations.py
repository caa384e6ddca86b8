"""`db upgrade` builds the schema from empty on both databases, with no drift from the models."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from reconciler.store.database import make_engine
from reconciler.store.migrate import current_revision, drift, head_revision, upgrade


def test_upgrade_from_empty_reaches_head_with_no_drift(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert "desired_objects" in inspect(engine).get_table_names()
    assert drift(engine) == []
    engine.dispose()


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    before = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == before
