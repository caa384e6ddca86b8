"""A workflow's request never holds its worker for its lane's build (DESIGN invariant 17,
issue 23): its deploy is asked for and looked at, then the lane is parked with a due time
and the operation with it (running, phase `waiting`, saying what it waits for). The loop
looks again at the due time; the operation then ends as it would have had the worker
waited: succeeded after the build, failed with Dokploy's evidence, or failed past the deploy
timeout on the runtime's clock. The deploy is asked for once, whoever dies meanwhile."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator.faults import ANY
from reconciler.loop.engine import LoopEngine
from reconciler.loop.resume import resume
from reconciler.records import operations, work_queue
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation, OperationPhase, OperationStatus
from reconciler.runtime import Runtime, ShiftedClock, utcnow
from tests.api.conftest import Mint, add_grant, bearer
from tests.loop.support import fast_engine
from tests.reconciler.conftest import owned_service_of, store_fleet
from tests.support.emulated_runtime import time_passes
from tests.support.fleets import converge, example_fleet
from tests.support.workflow_requests import operation_of, request_lane

SHOP = "product:shop/testing"  # auto-safe, with a health check
LEDGER = "product:ledger/testing"  # auto-safe, another lane
BUILD_SECONDS = 120.0  # on the emulator's clock: no look sees it end unless a test moves it


async def _shop_with_a_slow_build(
    runtime: Runtime, emulator: Emulator, tmp_path: Path, *, image: str = "v2"
) -> tuple[Runtime, str]:
    """Shop and ledger converged (quick builds), then shop given a new image while Dokploy's
    builds take two minutes; the loop's runtime on a clock the test moves."""
    only = ("docs-site.yaml", "runners.yaml")
    store_fleet(runtime.database, example_fleet(tmp_path, without=only), prune=True)
    await converge(runtime, [SHOP, LEDGER])
    owned = owned_service_of(runtime.database, SHOP)
    assert owned is not None
    edit = ("shop.yaml", "ghcr.io/acme/shop:main", f"ghcr.io/acme/shop:{image}")
    store_fleet(runtime.database, example_fleet(tmp_path, without=only, edit=edit), prune=True)
    emulator.state.build_seconds = BUILD_SECONDS
    return dataclasses.replace(runtime, clock=ShiftedClock()), owned.object_id


def _one_worker(runtime: Runtime) -> LoopEngine:
    """A loop with a single worker taking one lane at a time."""
    return fast_engine(runtime, loop_workers=1, loop_batch_size=1)


def _builds(emulator: Emulator, service_id: str) -> int:
    return len(emulator.state.builds.get(service_id, []))


def _parked(operation: Operation) -> bool:
    return (operation.status, operation.phase) == (
        OperationStatus.running,
        OperationPhase.waiting,
    )


async def test_a_requested_build_frees_the_worker_and_its_operation_ends_after_it(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    builds = _builds(emulator, service_id)
    shop = request_lane(engine, SHOP, apply=True)
    ledger = request_lane(engine, LEDGER, apply=True)

    loop = _one_worker(looping)
    await loop.run_once()  # returns: no worker waits two minutes for the build

    parked = operation_of(engine, shop)
    assert _parked(parked), parked
    result = parked.result or {}
    assert result["outcome"] == "waiting" and result["due_at"] and result["parked_since"]
    (waits,) = result["waiting_for"]
    assert waits["op"] == "deploy" and "is building" in waits["message"]
    other = operation_of(engine, ledger)  # worked by the one worker meanwhile
    assert other.status == "succeeded" and other.result
    assert other.result["outcome"] == "converged"
    assert _builds(emulator, service_id) == builds + 1

    time_passes(emulator, looping, BUILD_SECONDS + 1)  # the build ends, done
    await _one_worker(looping).run_once()  # the lane's due look

    done = operation_of(engine, shop)
    assert (done.status, done.phase) == ("succeeded", "done"), done
    assert done.result and done.result["outcome"] == "applied"
    assert "health check(s) passed" in done.result["actions"][-1]["message"]
    assert _builds(emulator, service_id) == builds + 1  # asked for once


async def test_a_requested_build_that_ends_in_error_fails_the_operation_with_the_evidence(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    emulator.faults.fail_next_deploy(service_id)
    shop = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    assert _parked(operation_of(engine, shop))
    builds = _builds(emulator, service_id)

    time_passes(emulator, looping, BUILD_SECONDS + 1)  # the build ends, in error
    await _one_worker(looping).run_once()

    failed = operation_of(engine, shop)
    assert (failed.status, failed.phase) == ("failed", "done"), failed
    assert failed.error and "DeployFailed" in failed.error
    assert failed.result and failed.result["outcome"] == "failed"
    deploy = next(a for a in failed.result["actions"] if a["op"] == "deploy")
    assert deploy["evidence"]["status"] == "error" and deploy["evidence"]["log_tail"]
    assert _builds(emulator, service_id) == builds


async def test_a_parked_build_past_its_deploy_timeout_fails_the_operation(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    shop = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    assert _parked(operation_of(engine, shop))
    builds = _builds(emulator, service_id)

    assert isinstance(looping.clock, ShiftedClock)
    looping.clock.advance(3600)  # the runtime's clock: past the deploy timeout, still building
    await _one_worker(looping).run_once()

    failed = operation_of(engine, shop)
    assert failed.status == "failed" and failed.error, failed
    assert "DeployTimeout" in failed.error
    assert _builds(emulator, service_id) == builds


async def test_a_worker_that_dies_while_a_request_is_parked_leaves_it_to_the_next(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    """Killed while the lane was parked, and its successor killed while it looked at the
    build again: the operation is neither failed nor planned afresh, the deploy is not asked
    again, and the next worker ends it succeeded."""
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    shop = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    builds = _builds(emulator, service_id)

    resumed = resume(looping)  # a new process starts while the lane is parked
    assert shop not in resumed.operations_failed + resumed.operations_requeued
    assert _parked(operation_of(engine, shop))

    # The next worker takes the lane at its due time, starts its look, and is killed.
    with session_scope(engine, write_lock=True) as session:
        work_queue.claim(session, "killed-worker", looping.now(), limit=10, hold_seconds=-60)
        operations.advance(
            session,
            [shop],
            looping.now(),
            status=OperationStatus.running,
            phase=OperationPhase.applying,
        )
    resumed = resume(looping)
    assert resumed.operations_parked == [shop] and resumed.operations_failed == []
    assert _parked(operation_of(engine, shop))

    time_passes(emulator, looping, BUILD_SECONDS + 1)
    await _one_worker(looping).run_once()
    done = operation_of(engine, shop)
    assert done.status == "succeeded" and done.result, done
    assert done.result["outcome"] == "applied"
    assert _builds(emulator, service_id) == builds  # never asked for again


async def test_a_request_for_a_parked_lane_is_merged_into_its_operation(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    first = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    builds = _builds(emulator, service_id)

    with session_scope(engine) as session:
        reserved = operations.reserve(
            session,
            operations.OperationRequest(lane=SHOP, requester="repo:acme/other", body_digest="b"),
            utcnow(),
        )
    assert reserved.operation.merged_into == first

    time_passes(emulator, looping, BUILD_SECONDS + 1)
    await _one_worker(looping).run_once()
    one, two = operation_of(engine, first), operation_of(engine, reserved.operation.id)
    assert one.status == two.status == "succeeded"
    assert one.result == two.result and two.merged_into == first
    assert _builds(emulator, service_id) == builds


async def test_the_workflow_polling_a_parked_operation_reads_what_it_waits_for(
    runtime: Runtime,
    engine: Engine,
    emulator: Emulator,
    tmp_path: Path,
    client: httpx.AsyncClient,
    mint: Mint,
) -> None:
    looping, _ = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    add_grant(engine, "product:shop/*", allow_apply=True)
    asked = await client.post(
        "/v1/lanes/product/shop/testing/reconcile", headers=bearer(mint()), json={"apply": True}
    )
    assert asked.status_code == 202 and asked.json()["waiting"] is None
    await _one_worker(looping).run_once()

    polled = (await client.get(asked.headers["location"], headers=bearer(mint()))).json()
    assert (polled["status"], polled["phase"]) == ("running", "waiting")
    waiting = polled["waiting"]
    assert [w["op"] for w in waiting["for"]] == ["deploy"]
    assert "is building" in waiting["for"][0]["message"]
    assert datetime.fromisoformat(waiting["due_at"]) >= datetime.fromisoformat(waiting["since"])

    time_passes(emulator, looping, BUILD_SECONDS + 1)
    await _one_worker(looping).run_once()
    ended = (await client.get(asked.headers["location"], headers=bearer(mint()))).json()
    assert (ended["status"], ended["phase"], ended["waiting"]) == ("succeeded", "done", None)


async def test_a_request_parked_past_its_wait_limit_gives_up_and_the_loop_finishes_the_lane(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    looping.settings = looping.settings.model_copy(update={"request_wait_limit_seconds": 60.0})
    shop = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    builds = _builds(emulator, service_id)

    assert isinstance(looping.clock, ShiftedClock)
    looping.clock.advance(61)  # within the deploy's timeout, past the request's limit
    await _one_worker(looping).run_once()
    gave_up = operation_of(engine, shop)
    assert gave_up.status == "failed" and gave_up.error, gave_up
    assert gave_up.result and gave_up.result["outcome"] == "gave_up"
    assert "request_wait_limit_seconds" in gave_up.error and "is building" in gave_up.error

    emulator.state.advance(BUILD_SECONDS + 1)  # the lane waited on; a scheduled pass ends it
    looping.clock.advance(60)
    await _one_worker(looping).run_once()
    owned = owned_service_of(engine, SHOP)
    assert owned is not None and owned.facts.get("deploy_asked") is None
    assert owned.facts["health"]["ok"]
    assert _builds(emulator, service_id) == builds
    assert operation_of(engine, shop).updated_at == gave_up.updated_at  # it ended once


async def test_a_look_at_a_parked_build_during_an_outage_keeps_the_operation_waiting(
    runtime: Runtime, engine: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    """A worker waiting on the build would not have looked again: an outage while the lane
    is parked backs the lane off and leaves the operation waiting, not blocked."""
    looping, service_id = await _shop_with_a_slow_build(runtime, emulator, tmp_path)
    shop = request_lane(engine, SHOP, apply=True)
    await _one_worker(looping).run_once()
    builds = _builds(emulator, service_id)

    emulator.faults.error_rate(ANY, 1.0, status=503)
    await _one_worker(looping).run_once()
    assert _parked(operation_of(engine, shop)), operation_of(engine, shop)

    emulator.faults.reset()
    emulator.state.advance(BUILD_SECONDS + 1)
    assert isinstance(looping.clock, ShiftedClock)
    looping.clock.advance(5)  # past the lane's backoff (a second at most in these tests)
    await _one_worker(looping).run_once()
    done = operation_of(engine, shop)
    assert done.status == "succeeded" and done.result, done
    assert _builds(emulator, service_id) == builds
