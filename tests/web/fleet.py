"""A fleet to review: the example fleet in SQLite, the Dokploy emulator on loopback, an
operator token, a runner lane as the records would hold it, and the review pages served
on loopback, as `setpoint serve` would serve them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from sqlalchemy.engine import Engine

from desired_state.loader import load_path
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app
from reconciler.core.outcomes import Claim, Facts, ObjectRef
from reconciler.core.planning import compute_plan
from reconciler.core.plans import Plan
from reconciler.demo.loopback import serve
from reconciler.demo.run import DEMO_SECRET_VARIABLES, DEMO_STORED_SECRETS, demo_secrets
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.runner.observed import GITHUB_BUSY, GITHUB_STATUS
from reconciler.records import operator_tokens, ownership, status
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings
from reconciler.web import PageAccess, ReviewSite, create_review_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "fleet"
RUNNER_LANE = "runner:shop-ci/amd64"


async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    """Stands in for the deployed containers' health endpoints."""
    return HealthResult(True, url, expect_status, "ok", 1.0)


@dataclass
class ReviewFleet:
    database: Engine
    base_url: str
    token: str  # alice's operator token
    secrets: dict[str, str]  # every secret value the fleet resolves, to look for in pages
    dokploy_url: str
    api_key: str
    store: SecretStore
    work_dir: Path

    @asynccontextmanager
    async def runtime(self, actor: str = "cli:reviewer") -> AsyncIterator[Runtime]:
        async with DokployClient(self.dokploy_url, self.api_key, timeout=10.0) as client:
            yield Runtime(
                database=self.database,
                settings=Settings(database_url=str(self.database.url), deploy_poll_seconds=0.05),
                actor=actor,
                kinds=all_kinds,
                providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                environ={k: v for k, v in self.secrets.items() if k in DEMO_SECRET_VARIABLES},
                secret_store=self.store,
            )

    def plan(self, *lanes: str) -> Plan:
        async def compute() -> Plan:
            async with self.runtime() as runtime:
                return await compute_plan(runtime, list(lanes) or None)

        # In a thread of its own: Playwright's sync API keeps an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, compute).result()

    def declare(self, path: Path) -> None:
        """Store desired state from `path`, as `setpoint desired apply` would."""
        with session_scope(self.database) as session:
            apply_documents(session, load_path(path), prune=False, now=utcnow())


def _runner_records(engine: Engine) -> None:
    """A runner lane as its kind (built elsewhere) would leave it in the records: two
    registrations, with what the last pass saw of them on GitHub."""
    seen: dict[str, dict[str, object]] = {
        "4711": {GITHUB_STATUS: "online", GITHUB_BUSY: True},
        "4712": {GITHUB_STATUS: "offline"},
    }
    for number, (runner_id, facts) in enumerate(seen.items(), start=1):
        ref = ObjectRef("github", "runner", runner_id)
        claim = Claim(ref, f"shop-ci-amd64-{number}")
        ownership.claim(engine, claim, utcnow(), kind="runner", lane=RUNNER_LANE)
        ownership.record_seen(engine, [Facts(ref, facts)], utcnow())
    status.record(
        engine, RUNNER_LANE, status.waiting("1 of 2 runners online; one is busy"), now=utcnow()
    )


@contextmanager
def review_fleet(work_dir: Path, access: PageAccess = PageAccess.open) -> Iterator[ReviewFleet]:
    engine = make_engine(f"sqlite:///{work_dir / 'review.db'}")
    upgrade(engine)
    environ = demo_secrets(DEMO_SECRET_VARIABLES)
    stored = demo_secrets(DEMO_STORED_SECRETS)
    store = SecretStore(engine, generate_key(), clock=utcnow)
    for name, value in stored.items():
        store.put(name, value)
    with session_scope(engine) as session:
        apply_documents(session, load_path(EXAMPLES), prune=False, now=utcnow())
        token = operator_tokens.issue(session, "alice", utcnow()).token
    _runner_records(engine)
    api_key = secrets.token_urlsafe(16)
    with ExitStack() as stack:
        dokploy_url = stack.enter_context(
            serve(create_app(api_key=api_key, seed=11, build_seconds=0.05))
        )
        fleet = ReviewFleet(
            engine, "", token, {**environ, **stored}, dokploy_url, api_key, store, work_dir
        )
        site = ReviewSite(database=engine, open_runtime=fleet.runtime, access=access)
        fleet.base_url = stack.enter_context(serve(create_review_app(site)))
        yield fleet
    engine.dispose()
