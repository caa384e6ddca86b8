"""A lane waiting for its Dokploy server's build slot parks with its place kept (DESIGN
invariant 17, issue 23): under a loop, a deploy whose server is building another of our
deploys is not asked for and holds no worker; the lane is Waiting "waiting for the build slot
of ..." with a due time, and lanes get the slot in the order they first asked, each deploy
asked for once. A holder that died frees the slot when its lease runs out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.execute import build_slot_of
from reconciler.records import status, turns
from reconciler.runtime import Runtime
from tests.reconciler.build_slot_fleet import BUILD_SECONDS, SLOTS, SlotFleet, lane_key
from tests.reconciler.conftest import dokploy, owned_service_of

# A scheduled pass must not wait for a two-minute build: it is over well before.
PASS_BOUND_SECONDS = 30.0


def _condition(fleet: SlotFleet, name: str) -> dict[str, str]:
    (row,) = [r for r in status.all_statuses(fleet.runtime.database) if r.lane == lane_key(name)]
    ready = next(c for c in row.conditions if c["type"] == "Ready")
    return {"status": ready["status"], "reason": ready["reason"], "message": ready["message"]}


def _resource(fleet: SlotFleet) -> str:
    (server_id,) = [i for i, n in fleet.servers.items() if n == "build-1"]
    return build_slot_of(dokploy(fleet.runtime), server_id)


def _lanes_in_line(fleet: SlotFleet) -> list[str]:
    return [row.lane for row in turns.line_of(fleet.runtime.database, _resource(fleet))]


async def test_lanes_waiting_for_a_build_slot_park_and_deploy_in_the_order_they_asked(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    fleet = await SlotFleet.converged(runtime, emulator, tmp_path)
    fleet.edit(["c"])  # c asks first, alone
    with anyio.fail_after(PASS_BOUND_SECONDS):
        await fleet.scheduled_pass()
    assert _lanes_in_line(fleet) == [lane_key("c")]
    fleet.edit(["a", "b", "d"])  # then a and b on c's server, d on another
    with anyio.fail_after(PASS_BOUND_SECONDS):  # one worker, not held by c's build
        report = await fleet.scheduled_pass()
    outcomes = {r.lane: r.outcome for r in report.lanes}
    assert outcomes[lane_key("a")] is outcomes[lane_key("b")] is LaneOutcome.waiting
    for name in ("a", "b"):
        seen = _condition(fleet, name)
        assert seen["status"] == "False" and seen["reason"] == "Waiting"
        assert "waiting for the build slot of" in seen["message"], seen
    # The other server's lane was worked meanwhile: its deploy was asked for in that pass.
    assert [a.server for a in fleet.asked] == ["build-1", "build-2"]
    line = _lanes_in_line(fleet)
    assert line[0] == lane_key("c") and sorted(line[1:]) == [lane_key("a"), lane_key("b")]

    for _ in range(8):  # builds end two minutes later; the next pass finds each
        fleet.advance(BUILD_SECONDS + 1)
        with anyio.fail_after(PASS_BOUND_SECONDS):
            await fleet.scheduled_pass()
        if not _lanes_in_line(fleet) and not fleet.building("build-1"):
            break
    on_build_1 = [a for a in fleet.asked if a.server == "build-1"]
    services = {a.service_id: a for a in on_build_1}
    assert len(on_build_1) == len(services) == len(SLOTS)  # each asked for exactly once
    assert not any(a.server_busy for a in fleet.asked)  # never while one of ours built
    asked_order = [_lane_of(fleet, a.service_id) for a in on_build_1]
    assert asked_order == line  # first asked, first served
    for name in "abcd":
        assert _condition(fleet, name)["status"] == "True", _condition(fleet, name)


def _lane_of(fleet: SlotFleet, service_id: str) -> str:
    for name in "abcd":
        owned = owned_service_of(fleet.runtime.database, lane_key(name))
        if owned is not None and owned.object_id == service_id:
            return lane_key(name)
    raise AssertionError(f"no lane owns {service_id}")


async def test_a_dead_holder_frees_the_build_slot_once_its_lease_runs_out(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    fleet = await SlotFleet.converged(runtime, emulator, tmp_path)
    # A worker took c's turn, then died before asking for its deploy: nobody renews it.
    turns.take(
        fleet.runtime.database,
        _resource(fleet),
        lane_key("c"),
        capacity=1,
        now=fleet.runtime.now(),
        lease_seconds=600.0,
    )
    fleet.edit(["a"])
    await fleet.scheduled_pass()
    seen = _condition(fleet, "a")
    assert seen["reason"] == "Waiting" and "held by product:slots/c" in seen["message"], seen
    assert fleet.asked == []
    fleet.advance(590)  # its lease still runs: a waits on, and looks again in 30 s
    await fleet.scheduled_pass()
    assert fleet.asked == []
    fleet.advance(31)  # c's lease ran out meanwhile
    await fleet.scheduled_pass()
    assert [a.server for a in fleet.asked] == ["build-1"]  # a's deploy, in a's turn
    assert _lanes_in_line(fleet) == [lane_key("a")]
    fleet.advance(BUILD_SECONDS + 1)
    await fleet.scheduled_pass()
    assert _condition(fleet, "a")["status"] == "True"
    assert _lanes_in_line(fleet) == []  # given back when its build ended
    assert len(fleet.asked) == 1


async def test_the_cli_apply_waits_in_line_behind_a_parked_build_and_says_so(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    fleet = await SlotFleet.converged(runtime, emulator, tmp_path)
    fleet.edit(["c"])
    await fleet.scheduled_pass()  # c is parked on its build, holding build-1's slot
    fleet.edit(["a"])
    said: list[str] = []
    cli = dataclasses.replace(fleet.runtime, parks_long_waits=False, progress=said.append)
    plan = await compute_plan(cli, [lane_key("a")])
    applied: list[ApplyResult] = []

    async def apply() -> None:
        applied.append(await apply_plan(cli, plan.plan_id))

    async def asked(count: int) -> None:
        with anyio.fail_after(PASS_BOUND_SECONDS):
            while len(fleet.asked) < count:  # noqa: ASYNC110 -- a poll of the emulator
                await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(apply)
        with anyio.fail_after(PASS_BOUND_SECONDS):
            while not any("waiting for the build slot of build-1" in s for s in said):  # noqa: ASYNC110 -- a poll of its progress
                await anyio.sleep(0.01)
        waiting = next(s for s in said if "waiting for the build slot" in s)
        assert "held by product:slots/c" in waiting, waiting
        assert len(fleet.asked) == 1  # c's deploy only: a's waits in line
        # c's build ends (Dokploy's clock: the apply's lane lease reads the runtime's, which
        # a jump would show expired before its heartbeat renews it); the loop's look finds it.
        fleet.emulator.state.advance(BUILD_SECONDS + 1)
        look = await compute_plan(fleet.runtime, [lane_key("c")])
        assert (await apply_plan(fleet.runtime, look.plan_id)).ok
        await asked(2)  # the slot given back, a's deploy is asked for at once
        fleet.emulator.state.advance(BUILD_SECONDS + 1)
    (result,) = applied
    assert result.ok, [(a.action_id, a.message) for a in result.actions]
    assert [a.server_busy for a in fleet.asked] == [False, False]
