"""Item 5: tables read whole at 80 columns and piped: lane keys, plan ids and seq uncut."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from reconciler.records import audit, status
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import utcnow
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
        now=utcnow(),
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
            at=utcnow(),
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
    from reconciler.core.outcomes import LaneOutcome
    from reconciler.loop.passes import LaneResult, PassReport

    detail = "3 action(s) pending an operator: apply with `setpoint apply plan-6d0123456789`"
    report = PassReport(
        lanes=[LaneResult(LONG_LANE, LaneOutcome.awaiting_operator, PLAN_ID, detail)]
    )
    show(report, OutputFormat.text)
    out = capsys.readouterr().out
    assert LONG_LANE in out and PLAN_ID in out and "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines())


LANES = [f"product:{name}/production" for name in ("atlas-payments", "zephyr-ledger-service")]
LONG_PRODUCT = "zz-reconciliation-gateway-for-atlas"


def _seed_every_table(engine: Engine, setpoint: Invoke, tmp_path: Path) -> list[str]:
    """Rows with long keys in every table the CLI prints; the keys and ids to look for."""
    from datetime import timedelta

    from reconciler.core.plans import Plan
    from reconciler.records import plan_store
    from reconciler.runtime import utcnow

    _seed(engine)
    now = utcnow()
    plan = Plan(
        plan_id=PLAN_ID,
        digest="d" * 64,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        created_by="cli:someone-with-a-long-name",
        desired_revision="r1",
        lanes=[LONG_LANE, *LANES],
        actions=[],
        blockers=[],
        fingerprints={},
    )
    plan_store.save(engine, plan)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: setpoint.dev/v1\nkind: Product\n"
        f"metadata: {{name: {LONG_PRODUCT}}}\n"
        "spec:\n  repository: acme/atlas\n  dokploy: {project: atlas}\n"
        "  runtime: {port: 3000}\n  lanes:\n    - {name: testing, image: ghcr.io/acme/atlas:main}\n"
    )
    assert setpoint("desired", "apply", str(fleet)).exit_code == 0
    granted = setpoint(
        "grants", "add", "--repository-id", "123456", "--repository", "acme/atlas-payments-monorepo",
        "--lanes", "product:zz-reconciliation-gateway-for-atlas/*",
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    assert setpoint("tokens", "create", "operator-with-a-rather-long-name").exit_code == 0
    return [
        LONG_LANE,
        PLAN_ID,
        *LANES,
        LONG_PRODUCT,
        "product:zz-reconciliation-gateway-for-atlas/*",
    ]


TABLES = [
    ("status",),
    ("audit", "list", "--limit", "3"),
    ("plans", "list"),
    ("grants", "list"),
    ("desired", "list"),
    ("tokens", "list"),
]


@pytest.mark.parametrize("width", [60, 80, 200])
def test_no_table_cuts_or_splits_a_key_or_an_id_at_any_width(
    setpoint: Invoke, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """Issue 25, item 4: every table at 60, 80 and 200 columns; a key or id is whole on one
    line wherever it is shown; a command without --wide never suggests it."""
    from reconciler.cli import output

    keys = _seed_every_table(engine, setpoint, tmp_path)
    monkeypatch.setattr(output.console, "width", width)
    for command in TABLES:
        result = setpoint(*command)
        assert result.exit_code == 0, (command, result.output)
        text = result.stdout
        if command[0] != "audit":  # audit summaries are cut on purpose (--wide: whole)
            assert "…" not in text, (command, text)
        lines = text.splitlines()
        # Audit summaries are cut on purpose; there only the key columns count.
        for key in [LONG_LANE, PLAN_ID] if command[0] == "audit" else keys:
            # A key is either not shown (its column hidden at this width) or whole on a line.
            shown = key[:14] in text
            assert not shown or any(key in line for line in lines), (command, width, key, text)
        if command[0] in {"desired", "tokens"}:
            assert "--wide" not in text
