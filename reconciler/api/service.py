"""The API's app factory: `create_api(runtime)` -> FastAPI (the API alone).

Thin, like the CLI: routes parse, check who is calling, and call the records and the
engine. `reconciler.composition.create_service` mounts the plan review pages beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from providers.github.oidc import OidcVerifier
from reconciler.api import lane_routes, operation_routes, plan_routes, webhook_routes
from reconciler.api.bodies import json_response
from reconciler.api.metrics import CONTENT_TYPE, ApiMetrics, MeasureRequests
from reconciler.api.problems import Guard, install_problem_handlers, problem
from reconciler.api.refusals import flush_refusals
from reconciler.api.service_state import ApiState, api_state
from reconciler.records.database import in_thread, session_scope
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.runtime import Runtime

OIDC_TIMEOUT_SECONDS = 10.0
BACKGROUND_GRACE_SECONDS = 30.0

probes = APIRouter()


@probes.get("/healthz", summary="Liveness and database reachability")
async def api_healthz(request: Request) -> Response:
    try:
        await in_thread(_ping, api_state(request))
    except Exception:  # any failure to reach the database means not ready
        return problem(503, "database_unavailable", "unavailable", "the database does not answer")
    return json_response({"status": "ok"})


def _ping(state: ApiState) -> None:
    with session_scope(state.engine) as session:
        session.connection().exec_driver_sql("SELECT 1")


@probes.get("/metrics", summary="Prometheus metrics")
async def api_metrics(request: Request) -> Response:
    text = await in_thread(api_state(request).metrics.render)
    return Response(text, media_type=CONTENT_TYPE)


def oidc_verifier(runtime: Runtime) -> OidcVerifier:
    """The verifier the settings describe, with replay protection in the database."""
    settings = runtime.settings
    return OidcVerifier(
        settings.api_oidc_issuer,
        settings.api_oidc_audience,
        jwks_url=settings.api_oidc_jwks_url,
        replay_store=DatabaseReplayStore(runtime.database, clock=runtime.now),
        timeout_seconds=OIDC_TIMEOUT_SECONDS,
        clock=runtime.clock,
    )


def create_api(runtime: Runtime, *, verifier: OidcVerifier | None = None) -> FastAPI:
    """The API on `runtime`. `verifier`: tests bring one wired to the GitHub emulator."""
    owned = verifier is None
    state = ApiState(
        runtime, verifier or oidc_verifier(runtime), ApiMetrics(runtime.database, runtime.now)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as group:
                state.background = group
                try:
                    yield
                finally:
                    # Applies still running get a while to end; then they are cancelled, and
                    # their plans are found interrupted and recovered by the next pass.
                    state.background = None
                    group.cancel_scope.deadline = anyio.current_time() + BACKGROUND_GRACE_SECONDS
        finally:
            with anyio.CancelScope(shield=True):  # the last minute's refusal counts
                await flush_refusals(state.engine, state.refusals)
            if owned:
                await state.verifier.aclose()

    app = FastAPI(
        title="Setpoint",
        version="1",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # the docs pages load scripts from a CDN; the document is enough
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.setpoint = state
    install_problem_handlers(app)
    routers = (lane_routes, operation_routes, plan_routes, webhook_routes)
    for router in (*(module.router for module in routers), probes):
        app.include_router(router)
    app.add_middleware(MeasureRequests, metrics=state.metrics)
    app.add_middleware(Guard)
    return app
