"""`setpoint audit` as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import utcnow
from tests.support.cli import Invoke


def _seed(engine: Engine) -> None:
    audit.record(
        engine,
        event=AuditEvent.plan_computed,
        actor="alice",
        lane="product:shop/prod",
        plan_id="p-1",
        data={"actions": 2, "risk": "safe"},
        at=utcnow(),
    )
    audit.record(
        engine,
        event=AuditEvent.apply_started,
        actor="alice",
        lane="product:shop/prod",
        plan_id="p-1",
        at=utcnow(),
    )
    audit.record(
        engine,
        event=AuditEvent.plan_blocked,
        actor="loop",
        lane="product:shop/testing",
        plan_id="p-2",
        data={"blockers": ["observation_incomplete"]},
        at=utcnow(),
    )


def test_list_shows_a_table_and_filters(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    result = setpoint("audit", "list")
    assert result.exit_code == 0, result.output
    assert "plan_computed" in result.stdout and "plan_blocked" in result.stdout
    assert "actions=2" in result.stdout and "risk=safe" in result.stdout
    only = json.loads(setpoint("audit", "list", "--lane", "product:shop/prod", "-o", "json").stdout)
    assert [r["event"] for r in only] == ["plan_computed", "apply_started"]
    by_event = setpoint("audit", "list", "--event", "plan_blocked", "--output", "json")
    assert [r["plan_id"] for r in json.loads(by_event.stdout)] == ["p-2"]
    newest = json.loads(setpoint("audit", "list", "--limit", "1", "-o", "json").stdout)
    assert [r["seq"] for r in newest] == [3]


def test_list_rejects_an_unknown_event(setpoint: Invoke) -> None:
    result = setpoint("audit", "list", "--event", "exploded")
    assert result.exit_code == 2


def test_show_one_record(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    shown = json.loads(setpoint("audit", "show", "3", "--output", "json").stdout)
    assert shown["data"] == {"blockers": ["observation_incomplete"]}
    assert len(shown["hash"]) == 64
    text = setpoint("audit", "show", "1")
    assert text.exit_code == 0 and "plan_computed" in text.stdout and "risk" in text.stdout
    missing = setpoint("audit", "show", "42")
    assert missing.exit_code == 1 and "there is no audit record 42" in missing.stderr


def test_verify_passes_then_names_the_tampered_record(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    ok = setpoint("audit", "verify")
    assert ok.exit_code == 0 and "3 record(s) verified" in ok.stdout
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET lane = 'shop/other' WHERE seq = 2"))
    broken = setpoint("audit", "verify")
    assert broken.exit_code == 1
    assert "audit chain broken at record 2" in broken.stderr


def test_export_jsonl_to_stdout_and_file(setpoint: Invoke, engine: Engine, tmp_path: Path) -> None:
    _seed(engine)
    result = setpoint("audit", "export", "--format", "jsonl")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    target = tmp_path / "audit.jsonl"
    written = setpoint("audit", "export", "--out", str(target), "--plan", "p-1")
    assert written.exit_code == 0 and "wrote 2 record(s)" in written.stdout
    assert target.read_text().splitlines() == result.stdout.splitlines()[:2]
