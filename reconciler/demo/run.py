"""`setpoint demo`: the whole loop on one machine, with nothing configured.

A throwaway SQLite database, the Dokploy emulator on a free loopback port, the example
fleet, and generated demo secrets: plan, apply, converge, audit, and a second empty plan;
then, with the GitHub emulator linked to Dokploy's, a runner pool comes online and a pull
request gets a preview; and a converged lane that starts failing its health check turns
Degraded, is told to a signed webhook once, and recovers.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from desired_state.loader import load_path
from desired_state.product import ProductSpec
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app
from providers.github.client import GitHubClient
from providers.github.emulator import create_app as create_github
from providers.github.emulator.runner_link import RunnerLink
from reconciler.composition import PageAccess, ReviewSite, create_review_app
from reconciler.core.apply import apply_plan
from reconciler.core.known_good import rollback
from reconciler.core.outcomes import LaneOutcome
from reconciler.core.planning import compute_plan
from reconciler.demo.going_wrong import demo_going_wrong
from reconciler.demo.loopback import serve
from reconciler.demo.workflow import demo_workflow_request
from reconciler.fleet import load_fleet
from reconciler.health import HealthResult, check_http
from reconciler.kinds import all_kinds, kind_listings, with_health_probe
from reconciler.loop.passes import reconcile_pass
from reconciler.presentation.console import render_apply, render_plan, render_status
from reconciler.records import audit, ownership
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import DocumentChange, apply_documents, store_revision
from reconciler.records.migrate import upgrade
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.secret_sources import default_sources
from reconciler.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_SECRET_VARIABLES = (  # fromEnv
    "SETPOINT_SECRET_SHOP_DATABASE_URL",
    "SETPOINT_SECRET_LEDGER_DB_PASSWORD",
)
DEMO_STORED_SECRETS = ("shop-stripe-api-key",)  # fromStore
# Awaited with the review pages' address once the demo is done; they stay up until it returns.
KeepServing = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DemoOutcome:
    converged: bool
    second_plan_actions: int
    audit_records: int
    chain_ok: bool
    secrets: Mapping[str, str]  # the generated values, so tests can scan outputs for them


def demo_secrets(names: tuple[str, ...]) -> dict[str, str]:
    return {name: "demo-" + secrets.token_urlsafe(18) for name in names}


def _workload() -> Starlette:
    """Stands in for the deployed containers: answers every health path with 200."""

    async def healthy(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"ok from {request.headers.get('host', '?')}")

    return Starlette(routes=[Route("/{path:path}", healthy)])


async def run_demo(
    console: Console,
    *,
    examples: Path = EXAMPLES,
    work_dir: Path | None = None,
    keep_serving: KeepServing | None = None,
) -> DemoOutcome:
    """The demo; with `keep_serving`, awaited with the review pages' address once the demo
    is done, the emulator and the pages stay up until it returns (`setpoint demo --serve`)."""
    if not await anyio.Path(examples).is_dir():
        raise FileNotFoundError(f"examples not found at {examples}")
    with tempfile.TemporaryDirectory(prefix="setpoint-demo-") as tmp:
        root = work_dir or Path(tmp)
        database = root / "setpoint-demo.db"
        environ = demo_secrets(DEMO_SECRET_VARIABLES)
        stored = demo_secrets(DEMO_STORED_SECRETS)
        engine = make_engine(f"sqlite:///{database}")
        upgrade(engine)
        clock = ShiftedClock()  # the runtime's, made first: the store stamps its writes by it
        store = SecretStore(engine, generate_key(), clock=clock.now)
        for name, value in stored.items():
            store.put(name, value)
        console.rule("[bold]1. desired state")
        documents = load_path(examples, sources=default_sources())
        with session_scope(engine) as session:
            report = apply_documents(session, documents, prune=False, now=clock.now())
        console.print(
            f"stored {report.count(DocumentChange.created)} object(s) from {examples} in {database}"
        )
        console.print(
            f"demo secrets generated: environment {', '.join(sorted(environ))}; encrypted "
            f"store {', '.join(sorted(stored))} (values never shown)"
        )

        api_key = secrets.token_urlsafe(24)
        workload = httpx.ASGITransport(app=_workload())
        hosts = {
            d.host
            for doc in documents
            if isinstance(doc.document.spec, ProductSpec)
            for lane in doc.document.spec.lanes
            for d in lane.domains
        }

        async def demo_resolver(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        async def health(url: str, expect_status: int, timeout: float) -> HealthResult:
            return await check_http(
                url,
                expect_status=expect_status,
                timeout=timeout,
                allow_hosts=hosts,
                resolver=demo_resolver,
                transport=workload,
            )

        dokploy_app = create_app(api_key=api_key, seed=7, build_seconds=0.3)
        github_app = create_github(seed=5)
        _link_runners(dokploy_app, github_app)
        with serve(dokploy_app) as base_url:
            console.print(f"Dokploy emulator serving at {base_url}/api")
            settings = Settings(database_url=f"sqlite:///{database}", deploy_poll_seconds=0.1)
            async with DokployClient(base_url, api_key, timeout=10.0) as client:
                runtime = Runtime(
                    database=engine,
                    settings=settings,
                    providers=with_health_probe({"dokploy": client}, health),
                    kinds=all_kinds,
                    actor="demo",
                    environ=environ,
                    secret_store=store,
                    clock=clock,
                    progress=lambda m: console.print(f"[cyan]→[/] {m}", highlight=False),
                )
                with review_pages(runtime, base_url, api_key) as pages_url:
                    console.print(f"review pages (open while the demo runs): {pages_url}/lanes")
                    outcome = await _demo_steps(
                        console, runtime, hosts, environ, stored, github_app, examples
                    )
                    if keep_serving is not None:
                        await keep_serving(pages_url)
        engine.dispose()
        return outcome


async def _demo_steps(
    console: Console,
    runtime: Runtime,
    hosts: set[str],
    environ: Mapping[str, str],
    stored: Mapping[str, str],
    github_app: Any,
    examples: Path,
) -> DemoOutcome:
    """Steps 2 to 11: plan, apply, status, a second plan, a pass, runners, previews, a
    workflow's request, a failed deploy rolled back, the audit trail."""
    engine = runtime.database
    console.rule("[bold]2. plan")
    plan = await compute_plan(runtime)
    render_plan(console, plan)
    console.rule(f"[bold]3. apply {plan.plan_id}")
    result = await apply_plan(runtime, plan.plan_id)
    render_apply(console, result)
    console.rule("[bold]4. status")
    render_status(console, all_statuses(engine))
    console.rule("[bold]5. second plan (expect no changes)")
    second = await compute_plan(runtime)
    render_plan(console, second)
    console.rule("[bold]6. a scheduled pass over the converged fleet")
    runtime.actor = "demo-scheduler"
    quiet = await reconcile_pass(runtime)
    console.print(
        f"{len(quiet.lanes)} lane(s) observed once: {quiet.count(LaneOutcome.converged)} "
        f"converged, {quiet.plans_stored} plan(s) stored, one audit record"
    )
    with serve(github_app) as github_url:
        console.print(f"GitHub emulator serving at {github_url}")
        async with GitHubClient(github_url, secrets.token_urlsafe(16)) as github:
            with_github = dataclasses.replace(
                runtime, providers={**runtime.providers, "github": github}
            )
            console.rule("[bold]7. runners: a pool comes online")
            runners_ok = await demo_runners(console, with_github, github_app)
            console.rule("[bold]8. previews: a pull request opens, is pushed to, closes")
            previews_ok = await demo_previews(console, with_github, github_app, hosts)
            console.rule("[bold]9. a CI workflow asks for one lane (API, OIDC, the loop)")
            workflow_ok = await demo_workflow_request(console, with_github, examples, github_url)
    console.rule("[bold]10. a deploy goes wrong, and a rollback")
    rollback_ok = await demo_rollback(console, dataclasses.replace(runtime, actor="demo"))
    console.rule("[bold]11. a converged lane fails its health check: Degraded, told once")
    going_wrong_ok = await demo_going_wrong(console, runtime)
    console.rule("[bold]12. audit trail")
    with session_scope(engine) as session:
        records = audit.list_records(session, limit=1000)
        verification = audit.verify_chain(session)
    for record in records:
        where = " ".join(filter(None, [record.lane, record.action_id]))
        console.print(
            f"  #{record.seq:<3} {record.event:<15} {where:<28} {_summary(record.data)}",
            highlight=False,
            markup=False,
        )
    console.print(
        f"audit chain: {'[green]verified[/]' if verification.ok else '[red]BROKEN[/]'} "
        f"({verification.checked} records)"
    )
    converged = (
        result.ok
        and not second.actions
        and not second.blockers
        and previews_ok
        and runners_ok
        and workflow_ok
        and rollback_ok
        and going_wrong_ok
    )
    console.rule("[bold green]demo converged" if converged else "[bold red]demo did not converge")
    return DemoOutcome(
        converged=converged and verification.ok,
        second_plan_actions=len(second.actions),
        audit_records=len(records),
        chain_ok=verification.ok,
        secrets={**environ, **stored},
    )


@contextmanager
def review_pages(runtime: Runtime, dokploy_url: str, api_key: str) -> Iterator[str]:
    """The plan review pages on loopback, open to read (nothing but this machine reaches
    them); an apply from them runs on a Dokploy client of its own, in the pages' loop."""

    @asynccontextmanager
    async def page_runtime() -> AsyncIterator[Runtime]:
        async with DokployClient(dokploy_url, api_key, timeout=10.0) as client:
            yield dataclasses.replace(runtime, providers={"dokploy": client}, progress=_quiet)

    site = ReviewSite(database=runtime.database, open_runtime=page_runtime, access=PageAccess.open)
    with serve(create_review_app(site)) as url:
        yield url


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _quiet(message: str) -> None:
    return None


def _summary(data: Mapping[str, object]) -> str:
    for key in ("message", "target", "status", "digest", "converged"):
        if key in data:
            return f"{key}={data[key]}"
    return ""


def _link_runners(dokploy_app: Starlette, github_app: Any) -> None:
    """Runner applications the Dokploy emulator starts come online in the GitHub emulator,
    and the example fleet's runner host is a server Dokploy lists."""
    dokploy_app.state.emulator.add_server("build-1")
    dokploy_app.state.emulator.link_runners(RunnerLink(github_app.state.emulator))
    github_app.state.emulator.add_repo("acme", "shop")


async def demo_rollback(console: Console, runtime: Runtime) -> bool:
    """shop/testing gets an image whose health check fails (the demo's probe answers 503
    for it); `rollback` writes the lane's last known-good state back as a new generation,
    and applying that plan brings the old image back. Returns whether both did."""
    lane = "product:shop/testing"
    await compute_plan(runtime, [lane])  # converged and healthy: its state is remembered
    fleet = load_fleet(runtime.database)
    product = fleet.documents["Product/shop"]
    spec = product.spec_dict()
    for entry in spec["lanes"]:
        if entry["name"] == "testing":
            entry["image"] = "ghcr.io/acme/shop:broken-build"
    broken = product.model_copy(update={"spec": type(product.spec).model_validate(spec)})
    with session_scope(runtime.database) as session:
        store_revision(session, broken, "demo: CI pushed a broken build", now=runtime.now())
    console.print("desired state for shop/testing now names ghcr.io/acme/shop:broken-build")

    async def failing(url: str, expect_status: int, timeout: float) -> HealthResult:
        return HealthResult(False, url, 503, f"answered 503, expected {expect_status}", 1.0)

    bad = await compute_plan(runtime, [lane])
    failing_checks = with_health_probe(runtime.providers, failing)
    failed = await apply_plan(dataclasses.replace(runtime, providers=failing_checks), bad.plan_id)
    render_apply(console, failed)
    rolled = await rollback(runtime, lane, reason="demo: the new build fails its health check")
    console.print(
        f"rollback: desired generation {rolled.generation} brings back generation "
        f"{rolled.restored.generation} ({rolled.restored.running}), audited as lane_rolled_back",
        highlight=False,
    )
    back = await compute_plan(runtime, [lane])
    render_plan(console, back)
    restored = await apply_plan(runtime, back.plan_id)
    render_apply(console, restored)
    return failed.status == "waiting" and restored.ok


async def demo_runners(console: Console, runtime: Runtime, github_app: Any) -> bool:
    """The example pool `shop-ci` (approved host build-1, `allow: [create, drain]`, at least
    one runner) gets its runner in one scheduled pass: registered with a JIT config that
    reaches the container through Dokploy env only, started, and seen online on GitHub."""
    report = await reconcile_pass(runtime)
    for _ in range(300):  # a started runner's lane waits, parked, until it is seen online
        waiting = [
            r
            for r in report.lanes
            if r.lane.startswith("runner:") and r.outcome is LaneOutcome.waiting
        ]
        if not waiting:
            break
        await anyio.sleep(0.2)
        report = await reconcile_pass(runtime)
    runners = [r for r in report.lanes if r.lane.startswith("runner:")]
    for line in runners:
        if line.outcome is not LaneOutcome.converged:
            console.print(f"  pass: {line.lane} {line.outcome}: {line.detail}", highlight=False)
    state = github_app.state.emulator
    for runner in state.runners_in("acme/shop"):
        labels = ", ".join(name for name, _ in runner.labels)
        console.print(
            f"  GitHub: {runner.name} {runner.status} ({'busy' if runner.busy else 'idle'}) "
            f"[{labels}]",
            highlight=False,
            markup=False,
        )
    online = [r.name for r in state.runners_in("acme/shop") if r.status == "online"]
    return online == ["setpoint-shop-ci-1"]


async def demo_previews(
    console: Console, runtime: Runtime, github_app: Any, hosts: set[str]
) -> bool:
    """A labelled PR on acme/shop becomes a preview, a push redeploys it, and closing it
    tears it down once the grace period is over (the demo moves its clock forward instead of
    waiting). Returns whether every step did what it should."""
    state = github_app.state.emulator
    clock = ShiftedClock()
    with_github = dataclasses.replace(runtime, clock=clock)
    pr = state.open_pull("acme", "shop", title="New checkout", labels=["preview"])
    hosts.add(f"pr-{pr.number}.preview.shop.example.com")
    console.print(f"opened PR #{pr.number} on acme/shop at {pr.head_sha[:7]}")
    steps = [await _preview_pass(console, with_github, "applied")]
    _, after = state.push("acme", "shop", pr.number)
    console.print(f"pushed {after[:7]} to PR #{pr.number}")
    steps.append(await _preview_pass(console, with_github, "applied"))
    state.close_pull("acme", "shop", pr.number)
    console.print(f"closed PR #{pr.number}: kept for the grace period")
    steps.append(await _preview_pass(console, with_github, None))
    clock.offset += 3 * 3600
    console.print("[dim](the demo clock moves 3 hours forward)[/]")
    steps.append(await _preview_pass(console, with_github, "applied"))
    await reconcile_pass(with_github)  # the anchor is marked gone
    listing = kind_listings()["previews"].from_records
    assert listing is not None
    rows = listing(load_fleet(runtime.database), ownership.snapshot(runtime.database), _at(clock()))
    for row in rows:
        console.print(f"  {row['lane']}: {row['state']} ({row['detail']})", highlight=False)
    gone = [row["state"] for row in rows] == ["gone"]
    return all(steps) and gone


async def _preview_pass(console: Console, runtime: Runtime, expect: str | None) -> bool:
    report = await reconcile_pass(runtime)
    previews = [r for r in report.lanes if r.lane.startswith("preview:")]
    for line in previews:
        console.print(f"  pass: {line.lane} {line.outcome}: {line.detail}", highlight=False)
    if not previews:
        console.print("  pass: no preview lane has work")
    return expect is None or [r.outcome for r in previews] == [expect]
