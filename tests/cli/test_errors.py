"""One-line errors, never a traceback for an operator's mistake; `--debug` shows it
(issue 12, items 6 and 7)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from typer.testing import CliRunner, Result

from reconciler.cli.app import app
from reconciler.records.database import make_engine
from reconciler.records.migrate import upgrade
from reconciler.records.secret_store import generate_key
from tests.support.cli import Invoke, invoker
from tests.support.secret_scan import assert_no_secrets

VALUE = "sk_live_0123456789abcdefSECRET"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'setpoint.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    yield from invoker(str(sqlite_engine.url), monkeypatch)


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _refuse_writes(engine: Engine, table: str) -> None:
    """What a read-only database does to a write, on one table only."""
    with engine.begin() as db:
        db.execute(
            sa.text(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
            )
        )


def _set_secret(name: str) -> Result:
    return CliRunner().invoke(app, ["secrets", "set", name], input=VALUE + "\n")


def test_an_unreachable_database_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://setpoint:hunter2-password@127.0.0.1:1/nothing"
    for invoke in invoker(url, monkeypatch):
        line = _one_line_error(invoke("status"))
        assert "the database postgresql+psycopg://setpoint:***@127.0.0.1:1/nothing" in line
        assert "cannot be used" in line and "hunter2" not in line


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    for invoke in invoker("postgresql://setpoint@127.0.0.1:1/nothing", monkeypatch):
        with pytest.raises(OperationalError):
            invoke("--debug", "status")


def test_a_read_only_database_fails_secrets_set_in_one_line_without_the_ciphertext(
    cli: Invoke, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    monkeypatch.setenv("SETPOINT_SECRET_STORE_KEY", key)
    _refuse_writes(sqlite_engine, "stored_secrets")

    result = _set_secret("stripe")
    line = _one_line_error(result)
    assert "attempt to write a readonly database" in line
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", result.output)  # no ciphertext
    assert_no_secrets(result.output, [VALUE, key])
    with pytest.raises(DBAPIError) as raised:
        CliRunner().invoke(
            app, ["--debug", "secrets", "set", "stripe"], input=VALUE + "\n", catch_exceptions=False
        )
    assert "parameters hidden" in str(raised.value)
    assert base64.b64encode(VALUE.encode()).decode()[:12] not in str(raised.value)


def test_secrets_set_stores_nothing_when_its_audit_record_cannot_be_written(
    cli: Invoke, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETPOINT_SECRET_STORE_KEY", generate_key())
    _refuse_writes(sqlite_engine, "audit_records")

    _one_line_error(_set_secret("stripe"))

    assert cli("secrets", "list").stdout.strip() == "the secret store is empty"


def test_secrets_set_and_delete_write_their_records_in_the_same_transaction(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETPOINT_SECRET_STORE_KEY", generate_key())
    assert _set_secret("stripe").exit_code == 0
    assert cli("secrets", "delete", "stripe").exit_code == 0
    events = cli("audit", "list", "-o", "json").stdout
    assert '"secret_stored"' in events and '"secret_deleted"' in events


def test_plan_out_into_a_missing_folder_fails_before_storing_anything(
    cli: Invoke, tmp_path: Path
) -> None:
    line = _one_line_error(cli("plan", "--out", str(tmp_path / "nowhere" / "p.json")))
    assert f"there is no folder {tmp_path / 'nowhere'}" in line
    assert cli("audit", "list").stdout.strip() == "no audit records match"


def test_audit_export_into_a_missing_folder_is_one_line(cli: Invoke, tmp_path: Path) -> None:
    line = _one_line_error(cli("audit", "export", "--out", str(tmp_path / "no" / "a.jsonl")))
    assert "there is no folder" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SETPOINT_PLAN_TTL_MINUTES", "0"),
        ("SETPOINT_APPLY_CONCURRENCY", "1000"),
        ("SETPOINT_DEPLOY_POLL_SECONDS", "-1"),
    ],
)
def test_a_setting_out_of_range_is_one_line_naming_it(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with monkeypatch.context() as patch:
        patch.setenv(variable, value)
        line = _one_line_error(cli("status"))
    assert f"invalid setting {variable}:" in line


def test_a_failure_inside_a_task_group_is_described_as_itself() -> None:
    from reconciler.cli.failures import describe
    from reconciler.errors import PlanNotFound

    grouped = ExceptionGroup("unhandled errors in a TaskGroup", [PlanNotFound("no plan 'x'")])
    assert describe(grouped) == "no plan 'x'"
    assert describe(ValueError("a bug")) is None  # a bug still shows its traceback
