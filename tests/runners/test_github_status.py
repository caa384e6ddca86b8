"""The runners page shows each runner's GitHub status (issue 25 item 7): the page reads only
the records, so a pass records what it saw of each managed registration, and only when it
changed (a quiet pass writes nothing)."""

from __future__ import annotations

from reconciler.core.planning import load_context
from reconciler.web.readouts import runner_lines
from tests.runners.conftest import Rig


def github_column(rig: Rig) -> dict[str, list[str]]:
    return {line.lane.key: line.github for line in runner_lines(rig.engine)}


async def seen_facts_of_a_pass(rig: Rig) -> int:
    context = await load_context(rig.runtime)
    kind = context.registry.kind_named("runner")
    assert kind is not None
    return len((await kind.observe(kind.lanes())).seen_facts)


async def test_a_pass_records_each_runners_github_status_for_the_page(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    await rig.reconcile()
    runner = rig.runners()["setpoint-ci-1"]
    assert runner.status == "online"
    await rig.reconcile_once()  # the pass after the create sees it registered
    assert github_column(rig) == {"runner:ci/1": ["setpoint-ci-1: online, idle"]}
    assert await seen_facts_of_a_pass(rig) == 0  # nothing changed: nothing to write

    runner.busy = True
    assert await seen_facts_of_a_pass(rig) == 1
    await rig.reconcile_once()
    assert github_column(rig) == {"runner:ci/1": ["setpoint-ci-1: online, busy"]}

    runner.status, runner.busy = "offline", False
    await rig.reconcile_once()
    assert github_column(rig) == {"runner:ci/1": ["setpoint-ci-1: offline"]}
