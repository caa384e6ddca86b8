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
from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import create_app
from providers.github.client import GitHubClient
from providers.github.emulator import create_app as create_github
from providers.github.emulator.runner_link import RunnerLink
from reconciler.cli.render import render_apply, render_plan, render_status
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.demo.going_wrong import demo_going_wrong
from reconciler.demo.loopback import serve
from reconciler.demo.workflow import demo_workflow_request
from reconciler.fleet import load_fleet
from reconciler.health import HealthResult, check_http
from reconciler.kinds import all_kinds
from reconciler.kinds.preview.lanes import preview_set
from reconciler.loop.passes import reconcile_pass
from reconciler.records import audit
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.records.secret_store import SecretStore, generate_key
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, ShiftedClock
from reconciler.secret_sources import default_sources
from reconciler.settings import Settings
from reconciler.web import PageAccess, ReviewSite, create_review_app

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
        store = SecretStore(engine, generate_key())
        for name, value in stored.items():
            store.put(name, value)
        console.rule("[bold]1. desired state")
        documents = load_path(examples, sources=default_sources())
        with session_scope(engine) as session:
            report = apply_documents(session, documents, prune=False)
        console.print(f"stored {report.count('created')} object(s) from {examples} in {database}")
        console.print(
            f"demo secrets generated: environment {', '.join(sorted(environ))}; encrypted "
            f"store {', '.join(sorted(stored))} (values never shown)"
        )

        api_key = secrets.token_urlsafe(24)
        workload = httpx.ASGITransport(app=_workload())
        hosts = {
            d.host
            for doc in documents
            if doc.document.kind == "Product"
            for lane in doc.document.spec.lanes  # type: ignore[union-attr]
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
                    engine=engine,
                    settings=settings,
                    providers={"dokploy": client},
                    kinds=all_kinds,
                    actor="demo",
                    health_check=health,
                    environ=environ,
                    secret_store=store,
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
    """Steps 2 to 10: plan, apply, status, a second plan, a pass, runners, previews, a
    workflow's request, the audit trail."""
    engine = runtime.engine
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
        f"{len(quiet.lanes)} lane(s) observed once: {quiet.count('converged')} "
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
    console.rule("[bold]9b. a converged lane fails its health check: Degraded, told once")
    going_wrong_ok = await demo_going_wrong(console, runtime)
    console.rule("[bold]10. audit trail")
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

    site = ReviewSite(engine=runtime.engine, open_runtime=page_runtime, access=PageAccess.open)
    with serve(create_review_app(site)) as url:
        yield url


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


async def demo_runners(console: Console, runtime: Runtime, github_app: Any) -> bool:
    """The example pool `shop-ci` (approved host build-1, `allow: [create, drain]`, at least
    one runner) gets its runner in one scheduled pass: registered with a JIT config that
    reaches the container through Dokploy env only, started, and seen online on GitHub."""
    report = await reconcile_pass(runtime)
    for _ in range(300):  # a started runner's lane waits, parked, until it is seen online
        waiting = [
            r for r in report.lanes if r.lane.startswith("runner:") and r.outcome == "waiting"
        ]
        if not waiting:
            break
        await anyio.sleep(0.2)
        report = await reconcile_pass(runtime)
    runners = [r for r in report.lanes if r.lane.startswith("runner:")]
    for line in runners:
        if line.outcome != "converged":
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
    fleet = load_fleet(runtime.engine)
    for view in preview_set(fleet, clock()).anchors:
        console.print(f"  {view.lane}: {view.state.value} ({view.detail})", highlight=False)
    gone = [v.state.value for v in preview_set(fleet, clock()).anchors] == ["gone"]
    return all(steps) and gone


async def _preview_pass(console: Console, runtime: Runtime, expect: str | None) -> bool:
    report = await reconcile_pass(runtime)
    previews = [r for r in report.lanes if r.lane.startswith("preview:")]
    for line in previews:
        console.print(f"  pass: {line.lane} {line.outcome}: {line.detail}", highlight=False)
    if not previews:
        console.print("  pass: no preview lane has work")
    return expect is None or [r.outcome for r in previews] == [expect]
