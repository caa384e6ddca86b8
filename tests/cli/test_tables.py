"""Item 5: tables read whole at 80 columns and piped: lane keys, plan ids and seq uncut."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reconciler.records import audit, status
from reconciler.records.audit_events import AuditEvent
from tests.support.cli import Invoke

LONG_LANE = "product:atlas-payments/production"
PLAN_ID = "plan-6d0123456789"


def _seed(engine: Engine) -> None:
    message = "a1: deploy failed: could not resolve host " + "x" * 80
    status.record(
        engine,
        LONG_LANE,
        status.stalled(status.Reason.apply_failed, message),
        observed_generation=3,
        last_applied_plan=PLAN_ID,
    )
    for _ in range(120):
        audit.record(
            engine,
            event=AuditEvent.plan_computed,
            actor="cli:someone-with-a-long-name",
            lane=LONG_LANE,
            plan_id=PLAN_ID,
            data={"digest": "d" * 64, "lanes": [LONG_LANE]},
        )


def test_status_at_80_columns_keeps_lane_and_plan_whole(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    result = setpoint("status")  # CliRunner output is piped: 80 columns
    assert result.exit_code == 0, result.output
    table = result.stdout.split("\n  ")[0]  # messages that do not fit follow, one a line
    assert all(len(line) <= 80 for line in table.splitlines())
    assert LONG_LANE in result.stdout and PLAN_ID in result.stdout
    assert "…" not in result.stdout
    assert "could not resolve host" in result.stdout  # the message, wrapped or below


def test_status_wide_shows_every_column(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    result = setpoint("status", "--wide")
    header = next(line for line in result.stdout.splitlines() if "LANE" in line)
    for column in ("LANE", "STATE", "REASON", "GEN", "UPDATED", "LAST PLAN", "MESSAGE"):
        assert column in header
    assert "x" * 80 in result.stdout


def test_audit_list_at_80_columns_keeps_seq_lane_and_plan(setpoint: Invoke, engine: Engine) -> None:
    _seed(engine)
    result = setpoint("audit", "list", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for seq in ("118", "119", "120"):
        assert any(line.startswith(f"{seq} ") for line in result.stdout.splitlines())
    assert LONG_LANE in result.stdout and PLAN_ID in result.stdout
    assert "--wide shows them" in result.stdout


def test_a_pass_report_at_80_columns_keeps_lane_and_plan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from reconciler.cli.output import OutputFormat
    from reconciler.cli.run_commands import show
    from reconciler.loop.passes import LaneResult, PassReport

    detail = "3 action(s) pending an operator: apply with `setpoint apply plan-6d0123456789`"
    report = PassReport(lanes=[LaneResult(LONG_LANE, "awaiting_operator", PLAN_ID, detail)])
    show(report, OutputFormat.text)
    out = capsys.readouterr().out
    assert LONG_LANE in out and PLAN_ID in out and "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines())
