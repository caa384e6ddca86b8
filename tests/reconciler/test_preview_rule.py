"""The preview rule (DESIGN.md invariant 15) as a property, over random sequences of operator
edits, pull request events and passes.

A preview of a pull request is deleted only when its PR closed or lost its label and the
grace period passed, its TTL expired with no new commit, or `maxActive` evicts it (or an
operator names it, which no step here does). Operator edits (`desired apply` with and without
`--prune`, policy switches on-push/on-request, limit changes, product removal) and a lost
`requestedSha` never delete one; every pass builds its kinds from stored state alone, so a
pass is also what a restarted process would do. After every step, every preview that runs
shows in status (`previews list`) the commit it actually runs.

Both emulators in process, a fake clock, a fresh database per example. CI runs
`max_examples=15` (about half a minute on a loaded machine); `SETPOINT_PROPERTY_SCALE=10`
runs ten times as many, with longer sequences.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from desired_state.loader import load_path
from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator import create_app as create_dokploy
from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from reconciler.core.lane_requests import request_documents
from reconciler.errors import SetpointError
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.loop.passes import reconcile_pass
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents, store_found
from reconciler.runtime import Runtime, ShiftedClock, utcnow
from reconciler.settings import Settings
from tests.providers.dokploy.contract import ContractRecorder
from tests.providers.dokploy.fixtures import API_KEY, make_client
from tests.reconciler.preview_fleet import views, write_product

SCALE = int(os.environ.get("SETPOINT_PROPERTY_SCALE", "1"))
GRACE_MINUTES = 10
TTL_HOURS = 2
HOST = """\
apiVersion: setpoint.dev/v1
kind: Host
metadata: {name: build-1}
spec: {type: dokploy-server, dokployServer: build-1, approved: true, maxRunners: 2}
"""

PR = st.integers(min_value=1, max_value=4)
STEP = st.one_of(
    st.tuples(st.just("open"), st.booleans()),  # True: from a fork allowForks does not list
    st.tuples(st.just("push"), PR),
    st.tuples(st.just("label"), PR, st.booleans()),  # add or remove the policy's label
    st.tuples(st.just("close"), PR),
    st.tuples(st.just("reopen"), PR),
    st.tuples(st.just("pass")),
    st.tuples(st.just("pass")),  # passes are what can delete: drawn twice as often
    st.tuples(st.just("wait"), st.sampled_from([60, (GRACE_MINUTES + 1) * 60, 3 * 3600])),
    st.tuples(st.just("apply"), st.booleans()),  # `desired apply`, True: with --prune
    st.tuples(st.just("policy"), st.sampled_from(["on-push", "on-request"])),
    st.tuples(st.just("limit"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("product"), st.booleans()),  # False: the operator removes the product
    st.tuples(st.just("request"), PR),  # a workflow asks for the PR's head
)


# Every sequence starts with two previews running, so every step drawn can threaten one.
RUNNING: list[tuple[Any, ...]] = [("open", False), ("open", False), ("pass",)]


@dataclass
class Seen:
    """What discovery could know of one pull request, at the passes that looked."""

    ever_qualified: bool = False
    unqualified_since: float | None = None
    head: str | None = None
    head_since: float = 0.0


@dataclass
class World:
    """The operator's files, the pull requests as passes saw them, and the fake clock."""

    folder: Path
    clock: ShiftedClock
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "deploy": "on-push",
            "max_active": 2,
            "grace": GRACE_MINUTES,
            "ttl": TTL_HOURS,
        }
    )
    present: bool = True
    seen: dict[int, Seen] = field(default_factory=dict)

    def write(self) -> None:
        (self.folder / "host.yaml").write_text(HOST)
        product = self.folder / "notes.yaml"
        if self.present:
            write_product(self.folder, "notes", **self.config)
        elif product.exists():
            product.unlink()


def qualifies(github: EmulatorState, number: int) -> bool:
    pr = github.pull("acme", "notes", number)
    return pr.state == "open" and "preview" in pr.labels and pr.head_repo is None


def observe(world: World, github: EmulatorState) -> None:
    """What the pass about to run will find, as the model of the rule keeps it."""
    now = world.clock()
    for number in sorted(github.pulls[("acme", "notes")]):
        seen = world.seen.setdefault(number, Seen())
        pr = github.pull("acme", "notes", number)
        if qualifies(github, number):
            seen.ever_qualified = True
            seen.unqualified_since = None
            if seen.head != pr.head_sha:
                seen.head, seen.head_since = pr.head_sha, now
        elif seen.ever_qualified and seen.unqualified_since is None:
            seen.unqualified_since = now


def over(world: World, seen: Seen) -> bool:
    """Whether the rule lets this PR's preview go: its grace period or its TTL is over."""
    now, grace, ttl = world.clock(), int(world.config["grace"]) * 60, int(world.config["ttl"])
    if seen.unqualified_since is not None:
        return now >= seen.unqualified_since + grace
    return now >= seen.head_since + ttl * 3600


def may_delete(world: World, number: int) -> bool:
    seen = world.seen.get(number, Seen())
    if over(world, seen):
        return True
    holding = [  # earlier PRs that may hold a place before this one (maxActive, oldest first)
        n for n, s in world.seen.items() if n < number and s.ever_qualified and not over(world, s)
    ]
    return len(holding) >= int(world.config["max_active"])


def preview_ids(emulator: Emulator) -> dict[str, int]:
    """Each preview service's id, by the PR number its name carries."""
    return {
        service_id: int(app["name"].rsplit("-", 1)[1])
        for service_id, app in emulator.state.applications.items()
        if app["name"].startswith("notes-pr-")
    }


def check_status_shows_what_runs(world: World, engine: Engine, emulator: Emulator) -> None:
    if not world.present:
        return  # no policy to read previews by; its lanes wait for an operator
    shown = views(engine, world.clock())
    for service_id, number in preview_ids(emulator).items():
        live = emulator.state.live.get(service_id)
        if live is None or live.docker_image is None:
            continue  # created, never deployed
        view = shown.get(f"preview:notes/pr-{number}")
        assert view is not None, f"PR #{number}'s preview runs but status does not show it"
        assert view.running_sha is not None
        assert live.docker_image.endswith(view.running_sha[:7]), (view, live.docker_image)


async def act(step: tuple[Any, ...], world: World, github: EmulatorState, runtime: Runtime) -> None:
    name, *args = step
    numbers = sorted(github.pulls[("acme", "notes")])
    if name in ("push", "label", "close", "reopen", "request") and args[0] not in numbers:
        return
    if name == "open":
        head_repo = "stranger/notes" if args[0] else None
        github.open_pull("acme", "notes", labels=["preview"], head_repo=head_repo)
    elif name == "push":
        github.push("acme", "notes", args[0])
    elif name == "label":
        change = github.add_label if args[1] else github.remove_label
        change("acme", "notes", args[0], "preview")
    elif name == "close":
        github.close_pull("acme", "notes", args[0])
    elif name == "reopen":
        github.reopen_pull("acme", "notes", args[0])
    elif name == "wait":
        world.clock.offset += args[0]
    else:
        await operate(name, args, world, github, runtime)


async def operate(
    name: str, args: list[Any], world: World, github: EmulatorState, runtime: Runtime
) -> None:
    if name == "policy":
        world.config["deploy"] = args[0]
    elif name == "limit":
        world.config["max_active"] = args[0]
    elif name == "product":
        world.present = args[0]
    elif name == "request":
        head = github.pull("acme", "notes", args[0]).head_sha
        try:
            documents = request_documents(runtime, f"preview:notes/pr-{args[0]}", {"sha": head})
        except SetpointError:
            return  # refused (not its head, not live, no such lane): nothing stored
        with session_scope(runtime.database) as session:
            store_found(session, documents, source="workflow", now=utcnow())
        return
    prune = bool(args[0]) if name == "apply" else not world.present
    world.write()
    with session_scope(runtime.database) as session:
        apply_documents(session, load_path(world.folder), prune=prune, now=utcnow())


async def run_steps(steps: list[tuple[Any, ...]], template: Path, workdir: Path) -> None:
    database = workdir / "setpoint.db"
    shutil.copy(template, database)
    world = World(folder=workdir / "fleet", clock=ShiftedClock())
    world.folder.mkdir()
    world.write()
    engine = make_engine(f"sqlite:///{database}")
    with session_scope(engine) as session:
        apply_documents(session, load_path(world.folder), prune=False, now=utcnow())
    dokploy_app = create_dokploy(api_key=API_KEY, seed=5, build_seconds=0.02)
    emulator: Emulator = dokploy_app.state.emulator
    github_app = create_github(seed=7)
    github: EmulatorState = github_app.state.emulator
    github.add_repo("acme", "notes")
    try:
        async with runtime_on(engine, dokploy_app, github_app, world.clock) as runtime:
            for step in steps:
                before = preview_ids(emulator)
                if step[0] == "pass":
                    observe(world, github)
                    await reconcile_pass(runtime)
                else:
                    await act(step, world, github, runtime)
                gone = {i: n for i, n in before.items() if i not in preview_ids(emulator)}
                for number in gone.values():
                    assert step[0] == "pass", f"{step} deleted PR #{number}'s preview"
                    assert may_delete(world, number), (
                        f"PR #{number}'s preview was deleted, and no rule allowed it: "
                        f"{steps} (config {world.config}, present {world.present})"
                    )
                check_status_shows_what_runs(world, engine, emulator)
    finally:
        engine.dispose()


@asynccontextmanager
async def runtime_on(
    engine: Engine, dokploy_app: Any, github_app: Any, clock: ShiftedClock
) -> AsyncIterator[Runtime]:
    async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
        return HealthResult(ok=True, url=url, status=expect_status, reason="ok", elapsed_ms=1.0)

    async with (
        make_client(dokploy_app, ContractRecorder(), timeout=2.0) as dokploy,
        GitHubClient(
            "http://github.test",
            "ghp_propertytoken0123456789",
            transport=httpx.ASGITransport(app=github_app),
            timeout=2.0,
            backoff_seconds=0.001,
            max_backoff_seconds=0.01,
        ) as github,
    ):
        yield Runtime(
            database=engine,
            settings=Settings(database_url="sqlite://", deploy_poll_seconds=0.01),
            providers={"dokploy": dokploy, HEALTH: HealthChecks(healthy), "github": github},
            kinds=all_kinds,
            actor="scheduler",
            clock=clock,
        )


@settings(
    max_examples=15 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, min_size=6, max_size=14 + 6 * (SCALE > 1)))
def test_no_preview_of_an_open_pr_is_deleted_but_by_the_rule(
    steps: list[tuple[Any, ...]], tmp_path_factory: Any, sqlite_template: Path
) -> None:
    workdir = tmp_path_factory.mktemp("example")
    anyio.run(run_steps, [*RUNNING, *steps], sqlite_template, workdir)


def test_the_property_catches_a_preview_deleted_by_an_operator_edit(
    tmp_path_factory: Any, sqlite_template: Path
) -> None:
    """The sequence issue 21 saw: open, a pass, the switch to on-request, a pass. A known
    path through the property, so CI always runs it whatever hypothesis draws."""
    steps: list[tuple[Any, ...]] = [
        ("open", False),
        ("open", False),
        ("pass",),
        ("policy", "on-request"),
        ("apply", True),
        ("pass",),
        ("wait", 3 * 3600),
        ("push", 1),
        ("pass",),
        ("pass",),
    ]
    anyio.run(run_steps, steps, sqlite_template, tmp_path_factory.mktemp("x"))
