"""A CI workflow's request, end to end through the API and the loop: an OIDC token from the
GitHub emulator's issuer, 202 at once with an operation, the loop plans and applies the lane
(its deploy takes longer than the answer), and polling ends with the real result."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.runtime import Runtime
from tests.api.conftest import Mint, add_grant, bearer
from tests.loop.support import fast_engine

RECONCILE = "/v1/lanes/product/shop/testing/reconcile"
FINAL = {"succeeded", "failed", "blocked"}


async def _poll(http: httpx.AsyncClient, location: str, minted: Mint) -> tuple[dict[str, Any], int]:
    polls = 0
    with anyio.fail_after(30):
        while True:
            view = (await http.get(location, headers=bearer(minted()))).json()
            if view["status"] in FINAL:
                return view, polls
            polls += 1
            await anyio.sleep(0.05)


async def test_a_workflow_request_is_answered_at_once_and_polling_ends_with_the_result(
    client: httpx.AsyncClient,
    api_runtime: Runtime,
    engine: Engine,
    mint: Mint,
    emulator: Emulator,
) -> None:
    add_grant(engine, "product:shop/*", allow_apply=True)
    emulator.faults.latency(1.0, "application.deploy")  # the apply outlasts the answer
    started = anyio.current_time()
    answer = await client.post(RECONCILE, headers=bearer(mint()), json={"apply": True})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending"
    loop = fast_engine(api_runtime)
    async with anyio.create_task_group() as group:
        group.start_soon(loop.run_beside, 3600.0)
        view, polls = await _poll(client, answer.headers["location"], mint)
        finished = anyio.current_time() - started
        group.cancel_scope.cancel()
    # Answered before the loop even started; the result needed the deploy's whole second.
    assert finished > 1.0, "the deploy's latency was spent before the result"
    assert polls > 0, "the caller polled while the loop worked"
    assert view["status"] == "succeeded", view
    assert view["plan_id"] and view["result"]["outcome"] == "applied"
    assert {a["result"] for a in view["result"]["actions"]} == {"ok"}
    assert "shop-testing" in emulator.summary()["applications"]
