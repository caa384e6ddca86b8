"""No lane waits for another (DESIGN invariant 17): a workflow's request for a product lane is
answered with its result within seconds while another lane of the same loop waits a long
time: a runner that never comes online, a deploy whose build takes minutes.

The loop has one worker, as a small `setpoint serve` might: before lanes were worked
independently, the request waited for the batch that held the long wait.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.records import leases, status, work_queue
from reconciler.records.database import in_thread, session_scope
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.records.work_queue import LaneWork
from reconciler.runtime import Runtime, utcnow
from tests.api.conftest import AUDIENCE, Mint, add_grant, bearer
from tests.conftest import EXAMPLES
from tests.loop.support import fast_engine, wait_for
from tests.reconciler.conftest import store_fleet
from tests.support.timeouts import EMULATOR_TIMEOUT_SECONDS

SHOP = "/v1/lanes/product/shop/testing/reconcile"
RUNNER = "runner:shop-ci/1"
LEDGER = "product:ledger/testing"
FINAL = {"succeeded", "failed", "blocked"}
ANSWER_WITHIN = 10.0  # seconds from the request to its operation's end


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The example fleet, ledger's lanes on a Dokploy server of their own (build-2), so a
    slow build there shares no build queue with shop's."""
    folder = tmp_path / "fleet"
    shutil.copytree(EXAMPLES / "fleet", folder)
    ledger = folder / "ledger.yaml"
    text = ledger.read_text()
    ledger.write_text(
        text.replace("    project: ledger", "    project: ledger\n    server: build-2")
    )
    return folder


def _edit(folder: Path, name: str, old: str, new: str, engine: Engine) -> None:
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    store_fleet(engine, folder)


@pytest.fixture
async def with_github(api_runtime: Runtime, github_emulator: FastAPI) -> AsyncIterator[Runtime]:
    """The service's runtime with GitHub too: the runner kind is on."""
    transport = httpx.ASGITransport(app=github_emulator)
    async with GitHubClient(
        "http://github.test",
        "ghp_lanetests0123456789abcdef",
        transport=transport,
        timeout=EMULATOR_TIMEOUT_SECONDS,
    ) as github:
        yield dataclasses.replace(
            api_runtime, providers={**api_runtime.providers, "github": github}
        )


async def _api(runtime: Runtime, github_emulator: FastAPI, engine: Engine) -> FastAPI:
    jwks = httpx.AsyncClient(transport=httpx.ASGITransport(app=github_emulator))
    verifier = OidcVerifier(
        DEFAULT_ISSUER, AUDIENCE, http=jwks, replay_store=DatabaseReplayStore(engine, clock=utcnow)
    )
    return create_service(runtime, verifier=verifier)


async def _request_and_poll(http: httpx.AsyncClient, minted: Mint) -> tuple[dict[str, Any], float]:
    """POST the workflow's request, poll its operation to the end; (its view, seconds)."""
    started = anyio.current_time()
    answer = await http.post(SHOP, headers=bearer(minted()), json={"apply": True})
    assert answer.status_code == 202, answer.text
    with anyio.fail_after(60):
        while True:
            view = (await http.get(answer.headers["location"], headers=bearer(minted()))).json()
            if view["status"] in FINAL:
                return view, anyio.current_time() - started
            await anyio.sleep(0.05)


def _conditions(engine: Engine, lane: str) -> dict[str, dict[str, Any]]:
    """The lane's status conditions by type."""
    rows = [row for row in status.all_statuses(engine) if row.lane == lane]
    return {c["type"]: c for c in rows[0].conditions} if rows else {}


async def test_a_request_is_answered_while_a_runner_never_comes_online(
    with_github: Runtime,
    github_emulator: FastAPI,
    github_state: EmulatorState,
    engine: Engine,
    emulator: Emulator,
    mint: Mint,
    fleet: Path,
) -> None:
    github_state.add_repo("acme", "shop")
    emulator.add_server("build-1")  # the runner's host; no runner link: it never registers
    emulator.add_server("build-2")
    store_fleet(engine, fleet)
    add_grant(engine, "product:shop/*", allow_apply=True)
    api = await _api(with_github, github_emulator, engine)
    loop = fast_engine(with_github, loop_workers=1)  # default online timeout: 180 s
    transport = httpx.ASGITransport(app=api)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://setpoint.test") as http,
        anyio.create_task_group() as group,
    ):
        group.start_soon(loop.run_beside, 3600.0)

        async def runner_started() -> bool:
            return "setpoint-shop-ci-1" in emulator.summary()["applications"]

        await wait_for(runner_started, timeout=60)  # its lane now waits for it to be online
        _edit(
            fleet,
            "shop.yaml",
            "image: ghcr.io/acme/shop:main",
            "image: ghcr.io/acme/shop:v2",
            engine,
        )
        view, took = await _request_and_poll(http, mint)
        runner = _conditions(engine, RUNNER)
        group.cancel_scope.cancel()
    assert view["status"] == "succeeded", (view.get("result"), view.get("error"))
    assert view["result"]["outcome"] == "applied"
    assert took < ANSWER_WITHIN, f"the request took {took:.1f} s"
    # The runner lane still waits, neither ready nor failed: parked (Waiting), being looked
    # at again (a fresh plan's ChangesPending) or applying its next step.
    assert runner["Ready"]["status"] == "False" and runner["Stalled"]["status"] == "False"
    assert runner["Ready"]["reason"] in {"Waiting", "ChangesPending", "Applying"}, runner
    assert not [r for r in github_state.runners_in("acme/shop") if r.status == "online"]


async def test_a_request_is_answered_while_another_lanes_build_takes_minutes(
    api_runtime: Runtime,
    client: httpx.AsyncClient,
    engine: Engine,
    emulator: Emulator,
    mint: Mint,
    fleet: Path,
) -> None:
    """The loop has one worker and batches of one: the building lane is parked (Waiting),
    its build holds no worker, and the request's lane is applied meanwhile."""
    emulator.add_server("build-2")
    store_fleet(engine, fleet)
    add_grant(engine, "product:shop/*", allow_apply=True)
    runtime = dataclasses.replace(api_runtime)
    await fast_engine(runtime).run_once()  # every lane there
    emulator.state.build_seconds = 120.0  # the builds queued from now take two minutes
    _edit(fleet, "ledger.yaml", "ledger-worker:main", "ledger-worker:v2", engine)
    # One lane in flight at a time, and that one is ledger's: a request still starts.
    loop = fast_engine(runtime, loop_workers=1, loop_batch_size=1)

    def ledger_building() -> bool:
        state = emulator.state
        state.tick()
        ledger = {sid for sid, row in state.composes.items() if row["name"] == "ledger-testing"}
        return any(
            build.started and not build.settled
            for sid in ledger
            for build in state.builds.get(sid, [])
        )

    async def parked() -> bool:  # its lane waits on its build with no worker holding it
        ready = _conditions(engine, LEDGER).get("Ready", {})
        return ready.get("reason") == "Waiting" and ledger_building()

    async with anyio.create_task_group() as group:
        group.start_soon(loop.run_beside, 3600.0)
        await wait_for(parked, timeout=60)
        ledger_builds = _ledger_builds(emulator)
        emulator.state.build_seconds = 0.05
        _edit(
            fleet,
            "shop.yaml",
            "image: ghcr.io/acme/shop:main",
            "image: ghcr.io/acme/shop:v2",
            engine,
        )
        view, took = await _request_and_poll(client, mint)
        still_building = ledger_building()
        ledger = _conditions(engine, LEDGER)
        group.cancel_scope.cancel()
    assert view["status"] == "succeeded", view
    assert view["result"]["outcome"] == "applied"
    assert took < ANSWER_WITHIN, f"the request took {took:.1f} s"
    assert still_building, "the slow build was still running when the request was answered"
    # Still parked (or being looked at again), never failed nor deployed a second time.
    assert ledger["Ready"]["status"] == "False" and ledger["Stalled"]["status"] == "False"
    assert ledger["Ready"]["reason"] in {"Waiting", "ChangesPending", "Applying"}, ledger
    assert _ledger_builds(emulator) == ledger_builds


def _ledger_builds(emulator: Emulator) -> int:
    state = emulator.state
    ledger = {sid for sid, row in state.composes.items() if row["name"] == "ledger-testing"}
    return sum(len(state.builds.get(sid, [])) for sid in ledger)


async def test_a_lane_is_finished_when_its_own_apply_is_not_when_its_plans_slowest_is(
    api_runtime: Runtime,
    client: httpx.AsyncClient,
    engine: Engine,
    emulator: Emulator,
    mint: Mint,
    fleet: Path,
) -> None:
    """Two scheduled lanes applied in one plan: shop's ends at once, ledger's build never
    does. Shop's queue row and lease are given back then (while ledger's lane still looks
    at its build, or is parked), and a request for it is applied while that build runs."""
    emulator.add_server("build-2")
    store_fleet(engine, fleet)
    add_grant(engine, "product:shop/*", allow_apply=True)
    runtime = dataclasses.replace(api_runtime)
    await fast_engine(runtime).run_once()
    for sid, row in emulator.state.composes.items():
        if row["name"] == "ledger-testing":
            emulator.faults.stuck_deployment(sid)  # its next build never ends
    _edit(fleet, "ledger.yaml", "ledger-worker:main", "ledger-worker:v2", engine)
    _edit(
        fleet, "shop.yaml", "image: ghcr.io/acme/shop:main", "image: ghcr.io/acme/shop:v2", engine
    )
    loop = fast_engine(runtime, loop_workers=1)  # one batch: both lanes in one plan

    before = _conditions(engine, "product:shop/testing")["Ready"]["message"]

    async def shop_finished() -> bool:  # applied by the loop (a new plan), and its row gone
        queued = {row.lane for row in await in_thread(_queued, engine)}
        condition = _conditions(engine, "product:shop/testing").get("Ready", {})
        applied = condition.get("status") == "True" and condition.get("message") != before
        return applied and "product:shop/testing" not in queued

    async with anyio.create_task_group() as group:
        group.start_soon(loop.run_beside, 3600.0)
        await wait_for(shop_finished, timeout=60)
        queued_then = _queued(engine)
        ledger_seen = _conditions(engine, "product:ledger/testing")
        ledger_in_flight = "product:ledger/testing" in {r.lane for r in queued_then}
        shop_lease = leases.current(engine, "product:shop/testing")
        ledger_lease = leases.current(engine, "product:ledger/testing")
        _edit(
            fleet, "shop.yaml", "image: ghcr.io/acme/shop:v2", "image: ghcr.io/acme/shop:v3", engine
        )
        view, took = await _request_and_poll(client, mint)
        group.cancel_scope.cancel()
    assert ledger_in_flight, (ledger_seen, [r.lane for r in queued_then])
    # Still in its first look at the build (leased), or parked until its next look.
    parked = ledger_seen.get("Ready", {}).get("reason") == "Waiting"
    assert ledger_lease is not None or parked, ledger_seen
    assert shop_lease is None  # given back as its own actions ended
    assert view["status"] == "succeeded", view
    assert view["result"]["outcome"] == "applied"
    assert took < ANSWER_WITHIN, f"the request took {took:.1f} s"


def _queued(engine: Engine) -> list[LaneWork]:
    with session_scope(engine) as session:
        return work_queue.queued(session)
