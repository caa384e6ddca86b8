"""Urgent work goes first (issue 23): a workflow's request gets a client's next free
connection slot before the scheduled lanes' calls queued ahead of it, and never takes a slot
from a call that holds one."""

from __future__ import annotations

from contextlib import nullcontext

import anyio
import pytest

from providers.urgency import Slots, urgent


async def _queue_up(slots: Slots, order: list[str], name: str, is_urgent: bool) -> None:
    with urgent() if is_urgent else nullcontext():
        async with slots:
            order.append(name)


async def test_a_freed_slot_goes_to_the_urgent_caller_before_earlier_ones() -> None:
    slots = Slots(1)
    order: list[str] = []
    # a scheduled lane's call holds the only connection
    async with anyio.create_task_group() as group, slots:
        for name in ("scheduled-1", "scheduled-2"):
            group.start_soon(_queue_up, slots, order, name, False)
            await anyio.wait_all_tasks_blocked()
        group.start_soon(_queue_up, slots, order, "request", True)
        await anyio.wait_all_tasks_blocked()
        assert order == []  # nobody takes a held slot, urgent or not
    assert order == ["request", "scheduled-1", "scheduled-2"]
    assert slots.held == 0


async def test_a_caller_cancelled_while_waiting_leaves_its_turn_to_the_next() -> None:
    slots = Slots(1)
    order: list[str] = []
    async with anyio.create_task_group() as group, slots:
        gave_up = anyio.CancelScope()
        group.start_soon(_cancelled_waiter, slots, gave_up)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(_queue_up, slots, order, "next", False)
        await anyio.wait_all_tasks_blocked()
        gave_up.cancel()
        await anyio.wait_all_tasks_blocked()
    assert order == ["next"]
    assert slots.held == 0


async def _cancelled_waiter(slots: Slots, scope: anyio.CancelScope) -> None:
    with scope:
        async with slots:
            pytest.fail("a cancelled waiter got the slot")
