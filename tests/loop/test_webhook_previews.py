"""A pull request's webhook brings its preview up now, not at the next timer tick: the batch
a webhook queued looks (discovery) before it plans, so the anchor for a new PR or a pushed
head exists when the lane is worked."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import anyio
import httpx
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.github.emulator import EmulatorState
from providers.github.webhooks import sign
from reconciler.records import work_queue
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.api.conftest import WEBHOOK_SECRET
from tests.loop.support import fast_engine, wait_for

HOOK = "/v1/webhooks/github"


def _delivery(
    state: EmulatorState, number: int, action: str, delivery: str
) -> tuple[bytes, dict[str, str]]:
    # What the worker acts on it reads from GitHub; the payload only says where to look.
    payload = {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": state.pulls[("acme", "shop")][number].head_sha},
        },
        "repository": {"full_name": "acme/shop", "id": 101},
    }
    body = json.dumps(payload).encode()
    headers = {
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }
    return body, headers


def _image(emulator: Emulator, name: str) -> str | None:
    for app in emulator.state.applications.values():
        if app["name"] == name:
            image: str | None = app.get("dockerImage")
            return image
    return None


async def test_a_pull_request_webhook_brings_its_preview_up_before_the_next_tick(
    webhook_client: httpx.AsyncClient,
    github_runtime: Runtime,
    engine: Engine,
    github_state: EmulatorState,
    emulator: Emulator,
) -> None:
    github_state.add_repo("acme", "shop")
    loop = fast_engine(github_runtime)

    async def first_tick_done() -> bool:
        with session_scope(engine) as session:
            return bool(loop.work_log) and work_queue.queued(session) == []

    async with anyio.create_task_group() as group:
        group.start_soon(loop.run_beside, 3600.0)  # one tick now, the next in an hour
        await wait_for(first_tick_done, timeout=60)
        pr = github_state.open_pull("acme", "shop", labels=["preview"])
        body, headers = _delivery(github_state, pr.number, "opened", "d-open")
        assert (await webhook_client.post(HOOK, content=body, headers=headers)).status_code == 202

        async def preview_up() -> bool:
            return _image(emulator, f"shop-pr-{pr.number}") is not None

        await wait_for(preview_up, timeout=30)
        # The PR hears of it from the apply, not at the interval's end (an hour away).
        await wait_for(_told(github_state, pr.number, pr.head_sha), timeout=30)
        _, after = github_state.push("acme", "shop", pr.number)
        body, headers = _delivery(github_state, pr.number, "synchronize", "d-push")
        assert (await webhook_client.post(HOOK, content=body, headers=headers)).status_code == 202
        pushed = f"ghcr.io/acme/shop:pr-{pr.number}-{after[:7]}"

        async def redeployed() -> bool:
            return _image(emulator, f"shop-pr-{pr.number}") == pushed

        await wait_for(redeployed, timeout=30)
        await wait_for(_told(github_state, pr.number, after), timeout=30)
        group.cancel_scope.cancel()


def _told(state: EmulatorState, number: int, sha: str) -> Callable[[], Awaitable[bool]]:
    """Whether the PR's comment and its newest deployment say `sha` was deployed."""

    async def told() -> bool:
        comments = state.comments_of("acme", "shop", number)
        deployments = [d for d in state.deployments_of("acme", "shop") if d.sha == sha]
        return (
            any("deployed" in c.body and f"`{sha[:7]}`" in c.body for c in comments)
            and bool(deployments)
            and deployments[0].statuses[-1].state == "success"
        )

    return told
