"""`setpoint demo` end to end: real loopback HTTP to the emulator, a throwaway database."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from reconciler.demo.run import run_demo
from tests.support.secret_scan import assert_no_secrets

pytestmark = pytest.mark.e2e


async def test_demo_converges_and_shows_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    outcome = await run_demo(console, work_dir=tmp_path)
    output = buffer.getvalue()
    assert outcome.converged, output
    assert outcome.second_plan_actions == 0
    assert outcome.chain_ok and outcome.audit_records > 20
    assert "no changes" in output and "demo converged" in output
    for lane in (
        "product:shop/testing",
        "product:shop/prod",
        "product:ledger/testing",
        "product:docs-site/prod",
    ):
        assert lane in output
    assert "runner:shop-ci/1 applied" in output  # a runner pool comes online
    assert "GitHub: setpoint-shop-ci-1 online" in output
    assert_no_secrets(output, outcome.secrets.values())
    assert_no_secrets(caplog.text, outcome.secrets.values())
