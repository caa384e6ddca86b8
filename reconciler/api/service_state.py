"""What every route needs, kept on the app: the runtime, the token verifier, the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from anyio.abc import TaskGroup
from fastapi import Request
from sqlalchemy.engine import Engine

from providers.github.oidc import OidcVerifier
from reconciler.api.metrics import ApiMetrics
from reconciler.api.refusals import RefusalAudit
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
    # Which refusals are audited one by one, and the counts of the rest (per source).
    refusals: RefusalAudit = field(init=False)

    def __post_init__(self) -> None:
        self.refusals = RefusalAudit(clock=self.runtime.clock)

    @property
    def engine(self) -> Engine:
        return self.runtime.database

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.setpoint
    return state


def client_source(request: Request) -> str:
    """Where a request came from, for the audit of refusals: the client's address."""
    return request.client.host if request.client is not None else "unknown"
