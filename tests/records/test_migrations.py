"""`db upgrade` builds the schema from empty on both databases, with no drift from the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

from reconciler.records.database import make_engine
from reconciler.records.migrate import current_revision, drift, head_revision, upgrade
from tests.support.cli import invoker


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


def test_upgrade_keeps_existing_ownership_rows(database_url: str) -> None:
    import sqlalchemy as sa

    engine = make_engine(database_url)
    upgrade(engine, "ae0c01079c2c")  # before owned_objects.plain_env_keys existed
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO owned_objects (provider, object_type, object_id, name, lane, "
                "protected, adopted, managed_env_keys, created_at, updated_at) VALUES "
                "('dokploy', 'application', 'a1', 'shop-testing', 'shop/testing', false, false, "
                "'[\"A\"]', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    upgrade(engine)
    from reconciler.records.ownership import snapshot

    (owned,) = snapshot(engine).objects
    assert owned.facts["managed_env_keys"] == ["A"] and owned.facts["plain_env_keys"] == []
    # Every lane so far was a product lane: its key now says so.
    assert (owned.kind, owned.lane) == ("product", "product:shop/testing")
    engine.dispose()


def test_a_percent_in_the_database_url_migrates_and_never_shows_the_password(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28 item 12: a percent-encoded password (or a `%` in a SQLite path) crashed
    every command with a traceback that printed the URL, password included."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        url = url.set(database=str(Path(url.database or "").with_name("set%25point.db")))
    else:  # the test server trusts its clients: a password is carried, never checked
        url = url.set(password="pa@ss%word-7731")
    text = url.render_as_string(hide_password=False)
    assert "%" in text
    for invoke in invoker(text, monkeypatch):
        upgraded = invoke("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert "pa@ss" not in upgraded.output and "%40ss" not in upgraded.output
        status = invoke("status")
        assert status.exit_code == 0, status.output
    engine = make_engine(text)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()
