"""Issue 25, item 5: messages an operator reads say where and what, without stray marks."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console

from reconciler.cli.render import render_plan
from reconciler.core.plans import Blocker, BlockerType, Plan
from reconciler.records.columns import utcnow


def test_a_blocker_line_names_its_lane_and_keeps_brackets_in_its_message() -> None:
    now = utcnow()
    plan = Plan(
        plan_id="plan-0123456789ab",
        digest="d" * 64,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        created_by="cli:alice",
        desired_revision="r1",
        lanes=["runner:ci/1"],
        actions=[],
        blockers=[
            Blocker(
                type=BlockerType.host_unsupported,
                lane="runner:ci/1",
                message="host build-1 [dokploy-server] is not listed by Dokploy",
            )
        ],
        fingerprints={},
    )
    console = Console(record=True, width=200)
    render_plan(console, plan)
    text = console.export_text()
    assert (
        "blocked host_unsupported on runner:ci/1: host build-1 [dokploy-server] is not listed"
        in text
    )
    assert " : " not in text
