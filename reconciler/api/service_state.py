"""What every route needs, kept on the app: the runtime, the token verifier, the metrics."""

from __future__ import annotations

from dataclasses import dataclass

from anyio.abc import TaskGroup
from fastapi import Request
from sqlalchemy.engine import Engine

from providers.github.oidc import OidcVerifier
from reconciler.api.metrics import ApiMetrics
from reconciler.runtime import Runtime
from reconciler.settings import Settings


@dataclass
class ApiState:
    runtime: Runtime
    verifier: OidcVerifier
    metrics: ApiMetrics
    # Work that outlives its request (a long apply): the service's task group, from the
    # app's lifespan; None when the app runs without one (then such work runs inline).
    background: TaskGroup | None = None

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.setpoint
    return state
