"""The demo's workflow request: a CI workflow asks Setpoint to reconcile one lane after its
image build, as `examples/workflows/reconcile-lane.yml` does.

The workflow mints an OIDC token from the GitHub emulator's issuer (one per request: each
token is accepted once), posts the request and gets 202 with an operation at once; the
loop engine picks the lane from the work queue, plans and applies it; the workflow polls
the operation until it ends with the real result.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console
from sqlalchemy.engine import Engine

from desired_state.loader import load_path
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.loop.engine import LoopEngine
from reconciler.records import grants
from reconciler.records.database import session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.grants import GrantSpec
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.runtime import Runtime

LANE = "product:shop/testing"
REQUEST_PATH = "/v1/lanes/product/shop/testing/reconcile"
SHOP_REPOSITORY_ID = 101  # the emulator issuer's acme/shop
NEW_IMAGE = "ghcr.io/acme/shop:main-2f4e6a1"
FINAL = {"succeeded", "failed", "blocked"}
# Seconds: the demo's loop looks at its queue often, so the request is worked at once.
DEMO_LOOP = {"loop_poll_seconds": 0.05, "loop_shutdown_grace_seconds": 2.0}


async def demo_workflow_request(
    console: Console, runtime: Runtime, examples: Path, github_url: str
) -> bool:
    """CI built a new shop image and desired state names it; the workflow asks for the
    lane. Returns whether the operation ended `succeeded` with the lane applied."""
    engine = runtime.database
    with session_scope(engine) as session:
        grants.add_grant(
            session,
            GrantSpec(SHOP_REPOSITORY_ID, "acme/shop", LANE, allow_apply=True),
            "demo",
            runtime.now(),
        )
    console.print(f"grant: acme/shop workflows may plan and apply {LANE}")
    _name_new_image(engine, examples, runtime.now())
    console.print(f"CI built {NEW_IMAGE}; desired state for {LANE} now names it")
    settings = runtime.settings.model_copy(update={"api_oidc_issuer": github_url, **DEMO_LOOP})
    service = dataclasses.replace(runtime, settings=settings, actor="demo-service")
    async with httpx.AsyncClient(timeout=10.0) as http:
        verifier = OidcVerifier(
            github_url,
            settings.api_oidc_audience,
            http=http,
            replay_store=DatabaseReplayStore(engine, clock=runtime.now),
        )
        api = httpx.ASGITransport(app=create_service(service, verifier=verifier))
        async with httpx.AsyncClient(transport=api, base_url="http://setpoint.demo") as client:
            workflow = _Workflow(console, http, client, github_url)
            loop = LoopEngine(service, name="demo")
            # The request is queued before the loop starts: its first scheduled pass would
            # otherwise apply the auto-safe lane itself, and the request find it converged.
            answer, view = await workflow.request()
            async with anyio.create_task_group() as group:
                group.start_soon(loop.run_beside, 3600.0)
                if answer.status_code == 202:
                    view = await workflow.poll(answer, view)
                group.cancel_scope.cancel()
    result = view.get("result") or {}
    console.print(
        f"operation {view['id']}: {view['status']}, plan {view.get('plan_id')}, "
        f"outcome {result.get('outcome')}",
        highlight=False,
    )
    return view["status"] == "succeeded" and result.get("outcome") == "applied"


def _name_new_image(engine: Engine, examples: Path, now: datetime) -> None:
    """What the workflow's commit to desired state does: the shop's testing lane names the
    image CI just built."""
    text = (examples / "fleet" / "shop.yaml").read_text()
    with tempfile.TemporaryDirectory(prefix="setpoint-demo-ci-") as folder:
        path = Path(folder) / "shop.yaml"
        path.write_text(text.replace("image: ghcr.io/acme/shop:main ", f"image: {NEW_IMAGE} ", 1))
        with session_scope(engine) as session:
            apply_documents(session, load_path(path), prune=False, now=now)


@dataclasses.dataclass
class _Workflow:
    console: Console
    github: httpx.AsyncClient
    setpoint: httpx.AsyncClient
    github_url: str

    async def token(self) -> str:
        """A fresh OIDC token from the issuer, as `core.getIDToken(audience)` gives one."""
        answer = await self.github.post(f"{self.github_url}/__emulator/oidc/token", json={})
        answer.raise_for_status()
        token: str = answer.json()["token"]
        return token

    async def request(self) -> tuple[httpx.Response, dict[str, Any]]:
        started = time.perf_counter()
        answer = await self.setpoint.post(
            REQUEST_PATH,
            headers={"Authorization": f"Bearer {await self.token()}", "Idempotency-Key": "ci-41"},
            json={"apply": True},
        )
        took = (time.perf_counter() - started) * 1000
        view: dict[str, Any] = answer.json()
        self.console.print(
            f"POST {REQUEST_PATH} -> {answer.status_code} in {took:.0f} ms: "
            f"operation {view.get('id')} {view.get('status')}",
            highlight=False,
        )
        if answer.status_code != 202:
            return answer, {"id": None, "status": "failed", **view}
        return answer, view

    async def poll(self, answer: httpx.Response, view: dict[str, Any]) -> dict[str, Any]:
        """Until the operation is final, as a workflow's poll step does."""
        seen = [view["status"]]
        with anyio.fail_after(60):
            while view["status"] not in FINAL:
                await anyio.sleep(0.1)
                headers = {"Authorization": f"Bearer {await self.token()}"}
                view = (await self.setpoint.get(answer.headers["location"], headers=headers)).json()
                if view["status"] != seen[-1]:
                    seen.append(view["status"])
        self.console.print(f"polled: {' -> '.join(seen)}", highlight=False)
        return view
