"""`setpoint demo` end to end: real loopback HTTP to the emulator, a throwaway database."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import httpx
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
    # a workflow's request: 202 at once, the loop applies, polling ends with the result
    assert "POST /v1/lanes/product/shop/testing/reconcile -> 202" in output
    assert "polled: pending -> " in output and "-> succeeded" in output
    assert "outcome applied" in output
    # a converged lane fails its health check: Degraded, told once, then Ready again
    assert "Ready=False Degraded: health check https://testing.shop.example.com/healthz" in output
    assert "1 notification(s) about product:shop/testing after four passes" in output
    assert "the check passes again: product:shop/testing Ready" in output
    assert_no_secrets(output, outcome.secrets.values())
    assert_no_secrets(caplog.text, outcome.secrets.values())


async def test_demo_serves_the_review_pages_of_its_fleet(tmp_path: Path) -> None:
    """`setpoint demo --serve`: once the demo is done, its fleet can be read in a browser."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    served: dict[str, str] = {}

    async def read_pages(url: str) -> None:
        async with httpx.AsyncClient(base_url=url) as http:
            for path in ("/lanes", "/plans", "/audit", "/previews"):
                response = await http.get(path)
                assert response.status_code == 200, path
                served[path] = response.text

    outcome = await run_demo(console, work_dir=tmp_path, keep_serving=read_pages)
    output = buffer.getvalue()
    assert outcome.converged, output
    assert "review pages (open while the demo runs): http://127.0.0.1:" in output
    lanes = served["/lanes"]
    assert 'data-lane="product:shop/prod" data-state="Ready"' in lanes
    assert "Chain verified" in served["/audit"] and "preview:shop/pr-1" in served["/previews"]
    assert_no_secrets("".join(served.values()), outcome.secrets.values())
