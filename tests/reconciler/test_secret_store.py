"""The encrypted secret store behind `fromStore` references."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from desired_state.secrets import SecretRef
from reconciler.errors import SecretStoreError, SecretUnavailable
from reconciler.records import audit
from reconciler.records.database import session_scope
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.runtime import ShiftedClock, utcnow
from reconciler.secret_values import resolve
from tests.support.cli import Invoke
from tests.support.secret_scan import assert_no_secrets

VALUE = "whsec_stored-value-abcdef123456"


def test_values_round_trip_and_only_ciphertext_is_stored(engine: Engine) -> None:
    store = SecretStore(engine, generate_key(), clock=utcnow)
    assert store.put("stripe", VALUE) is True
    assert store.put("stripe", VALUE + "-rotated") is False
    assert store.get("stripe") == VALUE + "-rotated"
    assert store.get("missing") is None
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT name, ciphertext FROM stored_secrets")).all()
    assert_no_secrets(json.dumps([list(r) for r in rows]), [VALUE, VALUE + "-rotated"])


def test_a_stored_secret_and_its_audit_record_carry_the_stores_clock(engine: Engine) -> None:
    """The store stamps on the clock it was given (wiring gives it the runtime's), not the
    wall clock: a day ahead here, in the listing and on the audit trail alike."""
    clock = ShiftedClock(offset=timedelta(days=1).total_seconds())
    store = SecretStore(engine, generate_key(), clock=clock.now)
    before = clock.now()
    store.put("stripe", VALUE, actor="alice")
    store.put("stripe", VALUE + "-rotated", actor="alice")
    store.delete("stripe", actor="alice")
    store.put("github", VALUE, actor="alice")
    after = clock.now()

    [(name, updated)] = store.names()
    assert name == "github" and before <= datetime.fromisoformat(updated) <= after
    with session_scope(engine) as session:
        records = audit.list_records(session)
    assert [r.event for r in records] == ["secret_stored"] * 2 + ["secret_deleted", "secret_stored"]
    assert all(before <= r.at <= after for r in records)


def test_a_wrong_key_is_a_clear_error_not_garbage(engine: Engine) -> None:
    SecretStore(engine, generate_key(), clock=utcnow).put("stripe", VALUE)
    with pytest.raises(SecretStoreError, match="wrong SETPOINT_SECRET_STORE_KEY") as caught:
        SecretStore(engine, generate_key(), clock=utcnow).get("stripe")
    assert VALUE not in str(caught.value)


def test_swapping_rows_in_the_database_does_not_swap_secrets(engine: Engine) -> None:
    store = SecretStore(engine, generate_key(), clock=utcnow)
    store.put("a", "value-of-a-123456")
    store.put("b", "value-of-b-123456")
    with engine.begin() as connection:
        result = connection.execute(sa.text("SELECT name, ciphertext FROM stored_secrets"))
        rows = {str(name): str(ciphertext) for name, ciphertext in result}
        for name, other in (("a", "b"), ("b", "a")):
            connection.execute(
                sa.text("UPDATE stored_secrets SET ciphertext = :c WHERE name = :n"),
                {"c": rows[other], "n": name},
            )
    with pytest.raises(SecretStoreError, match="altered"):
        store.get("a")


@pytest.mark.parametrize("key", ["not base64 !", "c2hvcnQ="])
def test_malformed_keys_are_refused(engine: Engine, key: str) -> None:
    with pytest.raises(SecretStoreError, match="key"):
        SecretStore(engine, key, clock=utcnow)


def test_from_store_references_resolve_or_say_why_not(engine: Engine) -> None:
    store = SecretStore(engine, generate_key(), clock=utcnow)
    store.put("stripe", VALUE)
    assert resolve(SecretRef.model_validate({"fromStore": "stripe"}), store=store).reveal() == VALUE
    with pytest.raises(SecretUnavailable, match="SETPOINT_SECRET_STORE_KEY"):
        resolve(SecretRef.model_validate({"fromStore": "stripe"}))
    with pytest.raises(SecretUnavailable, match="not in the secret store"):
        resolve(SecretRef.model_validate({"fromStore": "other"}), store=store)


def test_cli_set_list_delete_never_show_the_value(
    setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = setpoint("secrets", "list")
    assert missing.exit_code == 1 and "SETPOINT_SECRET_STORE_KEY is not set" in missing.stderr
    key = setpoint("secrets", "keygen").stdout.strip()
    monkeypatch.setenv("SETPOINT_SECRET_STORE_KEY", key)
    from reconciler.cli.app import app

    stored = CliRunner().invoke(app, ["secrets", "set", "stripe"], input=VALUE + "\n")
    assert stored.exit_code == 0, stored.output
    listed = setpoint("secrets", "list", "--output", "json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["stripe"]
    exported = setpoint("audit", "export", "--format", "jsonl").stdout
    assert '"secret_stored"' in exported
    assert setpoint("secrets", "delete", "stripe").exit_code == 0
    assert setpoint("secrets", "delete", "stripe").exit_code == 1
    for text in (stored.output, listed.output, exported):
        assert_no_secrets(text, [VALUE, key])
