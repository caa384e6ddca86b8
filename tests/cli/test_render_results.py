"""Every result the engine can report has a rendering (issue 25 item 2, issue 28 item 4):
`setpoint apply` printed a traceback (`KeyError: 'retry'`) when a health check failed after
a deploy or a runner drain had to wait, though the engine was right to wait."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from reconciler.core.apply import ActionReport, ApplyResult, ApplyStatus
from reconciler.core.outcomes import ActionResult
from reconciler.core.plans import Blocker, BlockerType
from reconciler.presentation.console import render_apply


def _printed(result: ApplyResult) -> str:
    out = io.StringIO()
    render_apply(Console(file=out, width=120, color_system=None), result)
    return out.getvalue()


@pytest.mark.parametrize("action_result", list(ActionResult))
@pytest.mark.parametrize("status", [s for s in ApplyStatus if s is not ApplyStatus.refused])
def test_every_action_result_and_apply_status_is_printed(
    action_result: ActionResult, status: ApplyStatus
) -> None:
    report = ActionReport(
        action_id="a1",
        op="drain_runner",
        lane="runner:ci/ci-amd64-1",
        result=action_result,
        message="runner [busy] with a job",
        retry_after=30.0 if action_result is ActionResult.retry else None,
    )
    printed = _printed(ApplyResult(plan_id="p-1", status=status, actions=[report]))
    assert f"a1   {action_result}" in printed
    assert "runner:ci/ci-amd64-1: runner [busy] with a job" in printed
    assert printed.rstrip().endswith(f"{status} plan p-1")


def test_a_waiting_action_says_when_it_is_tried_again() -> None:
    report = ActionReport(
        "a2", "verify_health", "product:shop/testing", ActionResult.retry, "503", 45.0
    )
    printed = _printed(ApplyResult(plan_id="p-2", status=ApplyStatus.waiting, actions=[report]))
    assert "product:shop/testing: 503 (tried again in 45s)" in printed


@pytest.mark.parametrize("blocker", list(BlockerType))
def test_every_refusal_is_printed(blocker: BlockerType) -> None:
    refusal = Blocker(type=blocker, lane=None, message="see [the lane]")
    printed = _printed(ApplyResult(plan_id="p-3", status=ApplyStatus.refused, refusal=refusal))
    assert printed.strip() == f"refused {blocker.value}: see [the lane]"
