"""Credentials written in clear in a compose file are refused at `validate` (issue 28 item
12), as plain `env:` values are: a plan carries the compose file itself (`plan -o json`,
`plan --out`, `plans show -o json`, `GET /v1/plans/{id}`), so masking the text plan alone
let them out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from desired_state.issues import InvalidDesiredState
from desired_state.loader import load_text
from reconciler.cli.app import app
from tests.conftest import EXAMPLES

LEDGER = (EXAMPLES / "fleet" / "ledger.yaml").read_text()
ANCHOR = "              TZ: ${TZ}\n"
PASTED = "hunter2-pasted-in-clear"


def _with_line(line: str, annotations: str = "") -> str:
    text = LEDGER.replace(ANCHOR, ANCHOR + f"              {line}\n", 1)
    if annotations:
        text = text.replace(
            "  name: ledger\n", f"  name: ledger\n  annotations:\n    {annotations}\n"
        )
    return text


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"REDIS_PASSWORD: {PASTED}", "REDIS_PASSWORD is a secret's name"),
        (f'- "API_KEY={PASTED}"', "API_KEY is a secret's name"),
        (f"DATABASE_URL: postgres://app:{PASTED}@db/app", "DATABASE_URL holds a URL with a pass"),
        ("GH: ghp_" + "a" * 36, "GH looks like a token"),
    ],
)
def test_a_credential_in_clear_is_refused_at_its_lane_without_its_value(
    line: str, reason: str
) -> None:
    with pytest.raises(InvalidDesiredState) as raised:
        load_text(_with_line(line), "ledger.yaml")
    [issue] = raised.value.issues
    assert issue.field == "spec.lanes[0].composeFile"
    assert issue.message.startswith("compose file line 7: a credential written in clear")
    assert reason in issue.message and "`${VAR}`" in issue.message
    assert PASTED not in str(issue) and "ghp_" not in str(issue)


@pytest.mark.parametrize(
    "line",
    [
        "REDIS_PASSWORD: ${REDIS_PASSWORD}",
        "DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app",
        "AUTH_MODE: ''",
        "LOG_LEVEL: debug",
    ],
)
def test_references_and_plain_values_pass(line: str) -> None:
    assert load_text(_with_line(line), "ledger.yaml")


def test_the_operator_may_say_a_value_is_not_secret() -> None:
    text = _with_line("TOKEN_TTL: 3600", "setpoint.dev/not-secret: TOKEN_TTL")
    assert load_text(text, "ledger.yaml")


def test_validate_prints_one_located_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.yaml"
    path.write_text(_with_line(f"REDIS_PASSWORD: {PASTED}"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    [line, summary] = result.stderr.strip().splitlines()
    assert line.startswith(f"{path}:") and "spec.lanes[0].composeFile: compose file line 7" in line
    assert PASTED not in result.output and summary == "1 problem(s) found"
