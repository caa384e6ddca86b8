"""An engine Runtime on a test database, wired to an in-process Dokploy emulator.

Every request the engine sends goes through the contract-recording transport, so the
engine's traffic is held to Dokploy's OpenAPI request schemas too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from desired_state.loader import load_path
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator, create_app
from reconciler.core.inventory import Owned
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.product.observed import owned_service
from reconciler.records.database import session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.ownership import snapshot
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings
from tests.conftest import EXAMPLES
from tests.providers.dokploy.contract import ContractRecorder
from tests.providers.dokploy.fixtures import API_KEY, make_client
from tests.support.health_probes import probe_answered_by

SECRETS = {  # environment variables, for fromEnv references
    "SETPOINT_SECRET_SHOP_DATABASE_URL": "postgres://shop:hunter2-very-secret@db.internal/shop",
    "SETPOINT_SECRET_LEDGER_DB_PASSWORD": "ledger-pw-correct-horse-battery",
}
STORED_SECRETS = {"shop-stripe-api-key": "sk_live_not-a-real-key-4242424242"}  # fromStore
ALL_SECRET_VALUES = [*SECRETS.values(), *STORED_SECRETS.values()]


@pytest.fixture(scope="session")
def engine_contract() -> Iterator[ContractRecorder]:
    recorder = ContractRecorder()
    yield recorder
    assert not recorder.violations, "engine requests broke the Dokploy contract:\n" + "\n".join(
        recorder.violations
    )


@pytest.fixture
def dokploy_app() -> Starlette:
    return create_app(api_key=API_KEY, seed=11, build_seconds=0.05)


@pytest.fixture
def emulator(dokploy_app: Starlette) -> Emulator:
    emu: Emulator = dokploy_app.state.emulator
    return emu


class Workload:
    """Stands in for deployed containers behind their domains; tests can make it unhealthy."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._answer)])

    async def _answer(self, request: Request) -> PlainTextResponse:
        self.requests.append(f"{request.headers.get('host')}{request.url.path}")
        return PlainTextResponse("ok", status_code=self.status)


@pytest.fixture
def workload() -> Workload:
    return Workload()


def store_fleet(engine: Engine, path: Path = EXAMPLES, *, prune: bool = False) -> None:
    with session_scope(engine) as session:
        apply_documents(session, load_path(path), prune=prune, now=utcnow())


@pytest.fixture
async def runtime(
    engine: Engine, dokploy_app: Starlette, engine_contract: ContractRecorder, workload: Workload
) -> AsyncIterator[Runtime]:
    store_fleet(engine)
    store = SecretStore(engine, generate_key(), clock=utcnow)
    for name, value in STORED_SECRETS.items():
        store.put(name, value)

    health = probe_answered_by(workload.app)

    async with make_client(dokploy_app, engine_contract) as client:
        yield Runtime(
            database=engine,
            settings=Settings(database_url="sqlite://", deploy_poll_seconds=0.02),
            providers={"dokploy": client, HEALTH: HealthChecks(health)},
            kinds=all_kinds,
            actor="test-operator",
            environ=dict(SECRETS),
            secret_store=store,
        )


def dokploy(runtime: Runtime) -> DokployClient:
    """The Dokploy client the runtime's product kind uses."""
    return runtime.provider("dokploy", DokployClient)


def owned_service_of(engine: Engine, lane: str) -> Owned | None:
    """The Dokploy service the ownership registry records for a product lane."""
    return owned_service(snapshot(engine).for_lane(lane))
