"""Benchmark: how fast a workflow's reconcile request is answered 202, while applies run.

Serves the API on loopback (uvicorn, real HTTP) on a SQLite file or PostgreSQL, with the
GitHub emulator's OIDC issuer for real RS256 tokens and the Dokploy emulator (in process)
behind the engine. Optionally starts an apply of the whole example fleet first, through
`POST /v1/plans/{id}/apply`, with slow deploys, so requests are answered while it runs.
Each request carries a freshly minted token (minting is not timed), as a workflow sends.
Prints p50, p90, p99 and max of the answer time, and whether the apply was still running
when the last request was answered.

    uv run python bench/api_requests.py --requests 300 --with-apply
    uv run python bench/api_requests.py --database-url postgresql://postgres@127.0.0.1/bench

The load generator shares the server's process and event loop (as a lower bound on what a
second machine would see, it overstates the latency a little).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx
import uvicorn

from desired_state.loader import load_path
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app as create_dokploy
from providers.github.emulator import create_app as create_github
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.core.planning import compute_plan
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.records import grants, operator_tokens
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"


async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    return HealthResult(ok=True, url=url, status=200, reason="bench", elapsed_ms=0.0)


def prepare(database_url: str) -> str:
    """Migrate, store the example fleet, grant every lane; returns an operator token."""
    engine = make_engine(database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        apply_documents(session, load_path(ROOT / "examples" / "fleet"), prune=False, now=utcnow())
        spec = grants.GrantSpec(repository_id=101, repository="acme/shop", lanes="*")
        grants.add_grant(session, spec, "bench", utcnow())
        token = operator_tokens.issue(session, "bench", utcnow()).token
    engine.dispose()
    return token


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(args: argparse.Namespace, database_url: str) -> None:
    operator = prepare(database_url)
    github = create_github(seed=1)
    dokploy = create_dokploy(api_key=KEY, seed=1, build_seconds=args.build_seconds)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=github)) as jwks,
        DokployClient(
            "http://dokploy.bench", KEY, transport=httpx.ASGITransport(app=dokploy), timeout=30
        ) as client,
    ):
        store = SecretStore(make_engine(database_url), generate_key(), clock=utcnow)
        store.put("shop-stripe-api-key", "sk_bench_not_a_key")
        settings = Settings(
            database_url=database_url, api_apply_wait_seconds=0.0, deploy_poll_seconds=0.2
        )
        runtime = Runtime(
            database=make_engine(database_url),
            settings=settings,
            providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
            kinds=all_kinds,
            actor="bench",
            environ={
                "SETPOINT_SECRET_SHOP_DATABASE_URL": "postgres://bench@db/shop",
                "SETPOINT_SECRET_LEDGER_DB_PASSWORD": "b",
            },
            secret_store=store,
        )
        verifier = OidcVerifier(
            DEFAULT_ISSUER,
            "setpoint",
            http=jwks,
            replay_store=DatabaseReplayStore(runtime.database, clock=runtime.now),
        )
        app = create_service(runtime, verifier=verifier)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110 -- uvicorn offers no event to wait on
                await anyio.sleep(0.01)
            await load(args, runtime, url, operator, github.state.emulator)
            server.should_exit = True


async def load(
    args: argparse.Namespace, runtime: Runtime, url: str, operator: str, github: object
) -> None:
    mint = github.mint_oidc_token  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        plan_id = None
        if args.with_apply:
            plan = await compute_plan(runtime)
            plan_id = plan.plan_id
            started = await http.post(
                f"/v1/plans/{plan_id}/apply", headers={"Authorization": f"Bearer {operator}"}
            )
            assert started.status_code == 202, started.text
        times: list[float] = []
        lanes = ["shop/testing", "shop/prod", "ledger/testing", "docs-site/testing"]
        for number in range(args.requests):
            token = mint()
            began = time.perf_counter()
            answer = await http.post(
                f"/v1/lanes/product/{lanes[number % len(lanes)]}/reconcile",
                headers={"Authorization": f"Bearer {token}"},
            )
            times.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 202, answer.text
        still = "-"
        if plan_id is not None:
            shown = await http.get(
                f"/v1/plans/{plan_id}", headers={"Authorization": f"Bearer {operator}"}
            )
            refusal = shown.json()["last_refusal"]
            still = shown.json()["status"] + (
                f" (refused: {refusal['message']})" if refusal else ""
            )
    report(args, times, still)


def report(args: argparse.Namespace, times: list[float], plan_status: str) -> None:
    print("| requests | p50 ms | p90 ms | p99 ms | max ms | apply running | plan at the end |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {len(times)} | {statistics.median(times):.1f} | {percentile(times, 0.9):.1f} "
        f"| {percentile(times, 0.99):.1f} | {max(times):.1f} | {args.with_apply} | {plan_status} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--with-apply", action="store_true", help="apply the fleet meanwhile")
    parser.add_argument("--build-seconds", type=float, default=20.0, help="each deploy's time")
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    args = parser.parse_args()
    if args.database_url:
        anyio.run(measure, args, args.database_url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(measure, args, f"sqlite:///{Path(tmp) / 'bench.db'}")


if __name__ == "__main__":
    main()
