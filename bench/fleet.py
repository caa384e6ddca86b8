"""Fleet speed: what Setpoint costs over a fleet of lanes, against Dokploy over real HTTP.

The Dokploy emulator runs in a child process, served by uvicorn on 127.0.0.1 (a random
port), with a per-call latency (`--latency`) and a simulated build time (`--build-seconds`).
Setpoint talks to it through its ordinary `DokployClient`, whose transport records every
request (method, path and body) on its way out. For each fleet size in `--lanes`:

1. first apply: `compute_plan` + `apply_plan` over every lane, from an empty Dokploy;
2. no-op pass over the converged fleet: the scheduled pass (`reconcile_pass`) and one
   `compute_plan` over every lane, each with its Dokploy calls counted;
3. diff and plan CPU: the observation is read once, then only the pure part of
   `compute_plan` (lane diffs + `build_plan`) is timed with `time.process_time`;
4. memory over load + observe + diff + plan: the tracemalloc peak (what the pass allocates),
   and the resident set's high-water mark, reset just before (Linux; it also counts memory
   the process kept from earlier phases).

Each wall time stands beside its lower bound, `(calls / concurrency) x latency` (plus the
builds, for an apply), and beside a naive baseline measured in the same run: the very
requests Setpoint made, replayed one at a time with a bare httpx client.

    uv run python bench/fleet.py                         # CI-sized: 100 lanes
    uv run python bench/fleet.py --lanes 100,200,1000,10000 --skip-apply-above 200 \\
        --skip-pass-above 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from desired_state.loader import load_text
from providers.dokploy.client import DokployClient
from providers.http_core import DEFAULT_CONNECTIONS
from providers.http_transport import KeepAliveTransport
from reconciler.core.apply import apply_plan
from reconciler.core.assembly import build_plan, observation_blockers
from reconciler.core.collector import collector_paused
from reconciler.core.planning import PassContext, compute_plan, load_context
from reconciler.core.plans import Blocker, BlockerType, Plan
from reconciler.health import HealthResult
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.registry import KindObservation
from reconciler.loop.passes import reconcile_pass
from reconciler.records.database import make_engine, session_scope
from reconciler.records.desired import apply_documents
from reconciler.records.migrate import upgrade
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings

API_KEY = "bench-fleet-key"
LOOPBACK = "127.0.0.1"
DIGEST = "sha256:" + "ab" * 32
DEFAULT_OBSERVE_CONCURRENCY = 8  # the product observer's bound on detail reads in flight

# Targets of the "Fleet speed" issue.
NOOP_TARGET_LANES = 1000
NOOP_TARGET_FACTOR = 1.5
APPLY_TARGET_LANES = 200
APPLY_TARGET_SECONDS = 15.0
PLAN_TARGET_LANES = 10_000
PLAN_TARGET_CPU_SECONDS = 2.0
PLAN_TARGET_PEAK_MB = 500.0


# -- the fleet --------------------------------------------------------------------------------


def fleet_yaml(products: int, *, env_keys: int = 1, domains: int = 1) -> str:
    """`products` products, each with a testing lane (a tag) and a prod lane (a digest)."""
    docs = []
    for i in range(products):
        env = ", ".join(["LOG_LEVEL: info", *(f"KEY_{k}: v{k}" for k in range(1, env_keys))])

        def hosts(prefix: str, i: int = i) -> str:
            names = [
                f"{prefix}p{i}.example.com",
                *(f"{prefix}d{d}.p{i}.example.com" for d in range(1, domains)),
            ]
            return ", ".join(f"{{host: {h}}}" for h in names)

        docs.append(
            f"""apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: p{i}}}
spec:
  repository: acme/p{i}
  dokploy: {{project: p{i}}}
  runtime: {{port: 8080}}
  env: {{{env}}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/p{i}:main
      domains: [{hosts("testing.")}]
    - name: prod
      image: ghcr.io/acme/p{i}@{DIGEST}
      domains: [{hosts("")}]
"""
        )
    return "---\n".join(docs)


# -- the emulator, in a child process on loopback ----------------------------------------------


# Run by the child process with `python -c`, so it imports the emulator and uvicorn only.
# The socket is made with IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that
# say they are TCP, and without it every answer waits ~40 ms for a delayed ACK (uvicorn
# writes the headers and the body separately).
SERVE_EMULATOR = """
import socket, sys
import uvicorn
from providers.dokploy.emulator import create_app

api_key, build_seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
app = create_app(api_key=api_key, seed=seed, build_seconds=build_seconds)
config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(config).run(sockets=[sock])
"""


class EmulatorProcess:
    """A Dokploy emulator served by uvicorn in a child process, controlled over HTTP."""

    def __init__(self, *, build_seconds: float, seed: int = 1) -> None:
        self.build_seconds = build_seconds
        self.process = subprocess.Popen(  # noqa: S603 -- our own interpreter and code
            [sys.executable, "-c", SERVE_EMULATOR, API_KEY, str(build_seconds), str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = ""

    def wait_ready(self, latency: float, timeout: float = 20.0) -> None:
        """Wait until it answers, then set its per-call latency."""
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.url = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._control("GET", "state")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)
        self.set_latency(latency)

    def _control(self, method: str, what: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, f"{self.url}/__emulator/{what}", json=body, headers={"x-api-key": API_KEY}
        )
        response.raise_for_status()
        return response.json()

    def set_latency(self, seconds: float) -> None:
        """Every API call waits `seconds` before it is handled (the fault controller's `*`)."""
        self._control("POST", "faults", {"action": "latency", "seconds": seconds})

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def emulators(count: int, *, build_seconds: float) -> Iterator[list[EmulatorProcess]]:
    """`count` emulators alike (same seed: the same ids in the same order), starting; call
    `wait_ready` on each before use."""
    served = [EmulatorProcess(build_seconds=build_seconds) for _ in range(count)]
    try:
        yield served
    finally:
        for each in served:
            each.close()


# -- recording what Setpoint asks of Dokploy ---------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # with the query string
    body: bytes
    answer: bytes = b""  # the response body, to tell which ids the emulator handed out

    @property
    def procedure(self) -> str:
        return self.path.split("?", 1)[0].rsplit("/", 1)[-1]

    @property
    def is_deploy(self) -> bool:
        return self.procedure.endswith((".deploy", ".redeploy"))


class RecordingTransport(httpx.AsyncBaseTransport):
    """The transport Setpoint's Dokploy client uses on its own, writing down each request it
    sent (retries included)."""

    def __init__(self) -> None:
        self._inner = KeepAliveTransport(max_idle=DEFAULT_CONNECTIONS)
        self.calls: list[Call] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Written down in the order sent (a request that needs an earlier answer is sent
        # after it), its answer filled in when it comes.
        sent = Call(request.method, request.url.raw_path.decode("ascii"), request.content)
        self.calls.append(sent)
        at = len(self.calls) - 1
        response = await self._inner.handle_async_request(request)
        answer = await response.aread()
        if at < len(self.calls) and self.calls[at] is sent:  # not taken meanwhile
            self.calls[at] = dataclasses.replace(sent, answer=answer)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


@dataclass
class Replay:
    seconds: float
    failed: int  # answers >= 400: a replayed id that no longer matches, say
    cpu_s: float = 0.0  # this process's CPU while replaying (the naive client's own cost)


async def replay_one_at_a_time(
    url: str, calls: Sequence[Call], build_seconds: float = 0.0
) -> Replay:
    """The naive client: the same requests, one at a time; after a deploy it sits out the
    build before its next request."""
    failed = 0
    headers = {"x-api-key": API_KEY, "accept": "application/json"}
    # Concurrent creates reached the emulator in another order than they were sent, so the
    # replay is handed other ids for them: later requests are sent with the replay's ids.
    ids = ReplayedIds()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        started, cpu = time.perf_counter(), time.process_time()
        for call in calls:
            extra = {"content-type": "application/json"} if call.method != "GET" else {}
            response = await http.request(
                call.method,
                ids.within(call.path),
                content=ids.within_body(call.body),
                headers=extra,
            )
            failed += response.status_code >= 400
            ids.learn(call.answer, response.content)
            if call.is_deploy and build_seconds:
                await asyncio.sleep(build_seconds)
        return Replay(time.perf_counter() - started, failed, time.process_time() - cpu)


class ReplayedIds:
    """Ids (and generated app names) the recorded run was handed, to those the replay was
    handed in the same place of the same answer."""

    def __init__(self) -> None:
        self.replaced: dict[str, str] = {}

    def learn(self, recorded: bytes, replayed: bytes) -> None:
        try:
            self._pair(json.loads(recorded), json.loads(replayed), "")
        except ValueError:  # not JSON (or no answer recorded): nothing to learn
            return

    def _pair(self, recorded: object, replayed: object, key: str) -> None:
        if isinstance(recorded, dict) and isinstance(replayed, dict):
            for name, value in recorded.items():
                self._pair(value, replayed.get(name), name)
        elif isinstance(recorded, list) and isinstance(replayed, list):
            for one, other in zip(recorded, replayed, strict=False):
                self._pair(one, other, key)
        elif (
            isinstance(recorded, str)
            and isinstance(replayed, str)
            and recorded != replayed
            and key.endswith(("Id", "Name"))
            and len(recorded) >= 6  # an id, not a word that may occur anywhere
        ):
            self.replaced[recorded] = replayed

    def within(self, text: str) -> str:
        for recorded, replayed in self.replaced.items():
            text = text.replace(recorded, replayed)
        return text

    def within_body(self, body: bytes) -> bytes | None:
        return self.within(body.decode()).encode() if body else None


# -- Setpoint, wired as an operator would ------------------------------------------------------


async def healthy(url: str, expect_status: int, timeout: float) -> HealthResult:
    # The emulator serves no apps; the domains' health is not what this bench measures.
    return HealthResult(ok=True, url=url, status=200, reason="bench", elapsed_ms=0.0)


def settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.deploy_poll_seconds is not None:
        overrides["deploy_poll_seconds"] = args.deploy_poll_seconds
    return Settings(**overrides)


def apply_concurrency(settings: Settings, given: int | None) -> tuple[int, str]:
    """How many actions the engine runs at once: `--apply-concurrency`, else a settings field
    named like one, else 1 (the apply walks its actions in order)."""
    if given is not None:
        return given, "--apply-concurrency"
    for name, value in settings.model_dump().items():
        if "concurrency" in name and isinstance(value, int) and value > 0:
            return value, f"Settings.{name}"
    return 1, "apply runs one action at a time"


def observe_concurrency(given: int | None) -> tuple[int, str]:
    if given is not None:
        return given, "--observe-concurrency"
    try:
        from reconciler.kinds.product import observe

        return int(observe.DETAIL_READ_CONCURRENCY), "product observer DETAIL_READ_CONCURRENCY"
    except (ImportError, AttributeError):
        return DEFAULT_OBSERVE_CONCURRENCY, "assumed"


@dataclass
class Fleet:
    """One fleet size: its database, the emulator and a runtime talking to it."""

    lanes: int
    runtime: Runtime
    recorder: RecordingTransport
    emulator: EmulatorProcess
    spare: EmulatorProcess | None  # untouched, same seed: where the apply is replayed


PRODUCTS_PER_FILE = 200


@contextmanager
def stored_fleet(args: argparse.Namespace, lanes: int) -> Iterator[Any]:
    with tempfile.TemporaryDirectory(prefix="setpoint-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        text = fleet_yaml(lanes // 2, env_keys=args.env_keys, domains=args.domains)
        # Desired-state files are bounded (1 MiB, 10,000 YAML values): a large fleet is many
        # files, as it would be; 200 products stay under both.
        docs = text.split("---\n")
        loaded = []
        for start in range(0, len(docs), PRODUCTS_PER_FILE):
            chunk = "---\n".join(docs[start : start + PRODUCTS_PER_FILE])
            loaded.extend(load_text(chunk, f"fleet-{start // PRODUCTS_PER_FILE}.yaml"))
        with session_scope(engine) as session:
            apply_documents(session, loaded, prune=False, now=utcnow())
        try:
            yield engine
        finally:
            engine.dispose()


# -- profiling -----------------------------------------------------------------------------


async def _inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    return func(*args)


def profile_inline() -> None:
    """For `--profile`: run storage calls on the event loop's thread, where cProfile sees them
    (they normally run in worker threads). Only for finding hot spots: times are inflated."""
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]


@contextmanager
def profiled(args: argparse.Namespace, name: str) -> Iterator[None]:
    """CPU profile of the block into `--profile DIR/<name>.prof`; print its top functions."""
    if args.profile is None:
        yield
        return
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        args.profile.mkdir(parents=True, exist_ok=True)
        path = args.profile / f"{name}.prof"
        profile.dump_stats(path)
        print(f"--- {path}: top functions by own CPU time", file=sys.stderr)
        stats = pstats.Stats(str(path), stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(12)


_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {message}", file=sys.stderr, flush=True)


def reset_rss_peak() -> None:
    """Reset the resident set's high-water mark (VmHWM), where Linux allows it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- measurements -------------------------------------------------------------------------------


@dataclass
class ApplyRow:
    lanes: int
    actions: int
    calls: int
    deploys: int
    plan_s: float
    apply_s: float
    lower_bound_s: float
    naive_s: float
    naive_failed: int
    emulator_cpu_s: float
    by_procedure: dict[str, int]
    cpu_s: float = 0.0  # Setpoint's process: `time.process_time` over plan + apply
    naive_cpu_s: float = 0.0

    @property
    def wall_s(self) -> float:
        return self.plan_s + self.apply_s


@dataclass
class PassRow:
    lanes: int
    entry: str
    calls: int
    by_procedure: dict[str, int]
    wall_s: float
    lower_bound_s: float
    naive_s: float
    naive_failed: int
    emulator_cpu_s: float
    cpu_s: float = 0.0  # Setpoint's process: `time.process_time` over the pass
    naive_cpu_s: float = 0.0

    @property
    def budget(self) -> int:
        return 2 + self.lanes


@dataclass
class PlanRow:
    lanes: int
    state: str
    actions: int
    load_cpu_s: float
    observe_cpu_s: float
    observe_wall_s: float
    observe_calls: int
    observe_bound_s: float
    diff_plan_cpu_s: float
    traced_peak_mb: float
    rss_peak_mb: float  # VmHWM, reset before load (max RSS of the process if it cannot be)
    # The whole `compute_plan` (load, observe, diff, plan, store, audit): CPU measured
    # without tracemalloc, then its traced peak in a run of its own.
    compute_plan_cpu_s: float = 0.0
    compute_plan_traced_mb: float = 0.0


@dataclass
class Results:
    config: dict[str, Any]
    apply: list[ApplyRow] = field(default_factory=list)
    passes: list[PassRow] = field(default_factory=list)
    plans: list[PlanRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def first_apply(fleet: Fleet, args: argparse.Namespace, concurrency: int) -> ApplyRow:
    runtime, emu = fleet.runtime, fleet.emulator
    fleet.recorder.take()
    cpu0 = emu.cpu_seconds()
    with profiled(args, f"{fleet.lanes}-first-apply"):
        started, own_cpu = time.perf_counter(), time.process_time()
        plan = await compute_plan(runtime)
        planned = time.perf_counter()
        result = await apply_plan(runtime, plan.plan_id)
        applied, own_cpu = time.perf_counter(), time.process_time() - own_cpu
    cpu = emu.cpu_seconds() - cpu0
    if not result.ok:
        failed = [a for a in result.actions if a.result != "ok"][:3]
        raise SystemExit(
            f"first apply of {fleet.lanes} lanes did not converge: {result.status} {failed}"
        )
    calls = fleet.recorder.take()
    deploys = sum(c.is_deploy for c in calls)
    # Replayed on an untouched emulator with the same seed, so the ids it hands out match.
    assert fleet.spare is not None
    naive = await replay_one_at_a_time(fleet.spare.url, calls, build_seconds=emu.build_seconds)
    # Dokploy builds one deployment at a time per server (the emulator too): the builds are
    # serial whatever the apply's concurrency.
    bound = len(calls) / concurrency * args.latency + deploys * emu.build_seconds
    return ApplyRow(
        lanes=fleet.lanes,
        actions=len(plan.actions),
        calls=len(calls),
        deploys=deploys,
        plan_s=planned - started,
        apply_s=applied - planned,
        lower_bound_s=bound,
        naive_s=naive.seconds,
        naive_failed=naive.failed,
        emulator_cpu_s=cpu,
        by_procedure=dict(Counter(c.procedure for c in calls)),
        cpu_s=own_cpu,
        naive_cpu_s=naive.cpu_s,
    )


async def converge_untimed(fleet: Fleet, latency: float) -> None:
    """Bring the fleet to converged without timing it (no latency while doing so)."""
    fleet.emulator.set_latency(0.0)
    plan = await compute_plan(fleet.runtime)
    result = await apply_plan(fleet.runtime, plan.plan_id)
    if not result.ok:
        raise SystemExit(f"could not converge {fleet.lanes} lanes: {result.status}")
    fleet.recorder.take()
    fleet.emulator.set_latency(latency)


async def _scheduled_pass(runtime: Runtime) -> str:
    report = await reconcile_pass(runtime)
    outcomes = Counter(r.outcome for r in report.lanes)
    if set(outcomes) != {"converged"}:
        raise SystemExit(f"the no-op pass was not a no-op: {dict(outcomes)}")
    return "converged"


async def _one_plan(runtime: Runtime) -> str:
    plan = await compute_plan(runtime)
    if plan.actions or plan.blockers:
        raise SystemExit(
            f"the no-op plan has {len(plan.actions)} action(s), {len(plan.blockers)} blocker(s)"
        )
    return "no changes"


NOOP_ENTRIES: dict[str, Callable[[Runtime], Any]] = {
    "reconcile_pass": _scheduled_pass,
    "compute_plan (all lanes)": _one_plan,
}


async def noop_pass(
    fleet: Fleet, entry: str, args: argparse.Namespace, concurrency: int
) -> PassRow:
    fleet.recorder.take()
    cpu0 = fleet.emulator.cpu_seconds()
    with profiled(args, f"{fleet.lanes}-noop-{entry.split()[0]}"):
        started, own_cpu = time.perf_counter(), time.process_time()
        await NOOP_ENTRIES[entry](fleet.runtime)
        wall, own_cpu = time.perf_counter() - started, time.process_time() - own_cpu
    cpu = fleet.emulator.cpu_seconds() - cpu0
    calls = fleet.recorder.take()
    naive = await replay_one_at_a_time(fleet.emulator.url, calls)
    return PassRow(
        lanes=fleet.lanes,
        entry=entry,
        calls=len(calls),
        by_procedure=dict(Counter(c.procedure for c in calls)),
        wall_s=wall,
        lower_bound_s=len(calls) / concurrency * args.latency,
        naive_s=naive.seconds,
        naive_failed=naive.failed,
        emulator_cpu_s=cpu,
        cpu_s=own_cpu,
        naive_cpu_s=naive.cpu_s,
    )


def diff_and_plan(
    runtime: Runtime, context: PassContext, observation: KindObservation, preflight: dict[str, str]
) -> Plan:
    """The pure part of `compute_plan` (reconciler/core/planning.py), step for step, with
    the cycle collector paused as the engine pauses it (core/collector.py)."""
    with collector_paused():
        return _diff_and_plan(runtime, context, observation, preflight)


def _diff_and_plan(
    runtime: Runtime, context: PassContext, observation: KindObservation, preflight: dict[str, str]
) -> Plan:
    registry = context.registry
    selected = registry.all_lanes()
    blockers = [
        Blocker(type=BlockerType.preflight_failed, lane=None, kind=kind, message=failure)
        for kind, failure in sorted(preflight.items())
    ]
    for kind, seen in sorted(observation.by_kind.items()):
        blockers.extend(observation_blockers(kind, seen))
    return build_plan(
        diffs=[registry.diff(lane, observation) for lane in selected],
        kinds=context.kind_facts(),
        fingerprints=observation.fingerprints(),
        generations={lane: registry.generation(lane) for lane in selected},
        desired_revision=context.fleet.revision,
        created_by=runtime.actor,
        now=utcnow(),
        ttl=timedelta(minutes=runtime.settings.plan_ttl_minutes),
        blockers=blockers,
        notes=observation.notes(),
    )


@dataclass
class Observed:
    """What `compute_plan` has read before its pure part starts, and what reading cost."""

    context: PassContext
    observation: KindObservation
    preflight: dict[str, Any]
    load_cpu_s: float
    observe_cpu_s: float  # preflight + observation
    observe_wall_s: float
    observe_calls: int


async def observed(fleet: Fleet) -> Observed:
    runtime = fleet.runtime
    fleet.recorder.take()
    cpu = time.process_time()
    context = await load_context(runtime)
    load_cpu = time.process_time() - cpu
    lanes = context.registry.all_lanes()
    cpu, wall = time.process_time(), time.perf_counter()
    preflight = await context.registry.preflight(lanes)
    observation = await context.registry.observe(lanes, skip=list(preflight))
    return Observed(
        context=context,
        observation=observation,
        preflight=preflight,
        load_cpu_s=load_cpu,
        observe_cpu_s=time.process_time() - cpu,
        observe_wall_s=time.perf_counter() - wall,
        observe_calls=len(fleet.recorder.take()),
    )


async def plan_cpu(fleet: Fleet, state: str, args: argparse.Namespace, concurrency: int) -> PlanRow:
    runtime = fleet.runtime
    gc.collect()
    reset_rss_peak()
    seen = await observed(fleet)
    cpu = time.process_time()
    plan = diff_and_plan(runtime, seen.context, seen.observation, seen.preflight)
    best = time.process_time() - cpu
    rss_peak = rss_peak_mb()  # load + observe + diff + plan, without tracemalloc's overhead
    for _ in range(args.repeat - 1):
        cpu = time.process_time()
        diff_and_plan(runtime, seen.context, seen.observation, seen.preflight)
        best = min(best, time.process_time() - cpu)
    if args.profile is not None:
        with profiled(args, f"{fleet.lanes}-diff-plan-{state.split()[0]}"):
            diff_and_plan(runtime, seen.context, seen.observation, seen.preflight)
    row = PlanRow(
        lanes=fleet.lanes,
        state=state,
        actions=len(plan.actions),
        load_cpu_s=seen.load_cpu_s,
        observe_cpu_s=seen.observe_cpu_s,
        observe_wall_s=seen.observe_wall_s,
        observe_calls=seen.observe_calls,
        observe_bound_s=seen.observe_calls / concurrency * args.latency,
        diff_plan_cpu_s=best,
        traced_peak_mb=0.0,
        rss_peak_mb=rss_peak,
    )
    del seen, plan
    gc.collect()
    tracemalloc.start()
    again = await observed(fleet)
    diff_and_plan(runtime, again.context, again.observation, again.preflight)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row.traced_peak_mb = peak / 1e6
    del again
    row.compute_plan_cpu_s, row.compute_plan_traced_mb = await whole_compute_plan(runtime)
    return row


async def whole_compute_plan(runtime: Runtime) -> tuple[float, float]:
    """CPU seconds of one `compute_plan` as an operator runs it (it stores the plan and its
    audit record), and the traced peak of another."""
    gc.collect()
    cpu = time.process_time()
    await compute_plan(runtime)
    cpu = time.process_time() - cpu
    gc.collect()
    tracemalloc.start()
    await compute_plan(runtime)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return cpu, peak / 1e6


FIRST_PLAN = "first plan (Dokploy empty)"
CONVERGED = "converged (no-op)"


async def measure(args: argparse.Namespace, lanes: int, results: Results) -> None:
    timed_apply = lanes <= args.skip_apply_above
    # An untimed convergence needs no build time; a no-op pass deploys nothing anyway.
    build = args.build_seconds if timed_apply else 0.0
    with (
        emulators(2 if timed_apply else 1, build_seconds=build) as served,
        stored_fleet(args, lanes) as engine,  # while the emulators start
    ):
        for each in served:
            each.wait_ready(args.latency)
        recorder = RecordingTransport()
        async with DokployClient(served[0].url, API_KEY, transport=recorder) as client:
            runtime = Runtime(
                database=engine,
                settings=settings_for(args),
                providers={"dokploy": client, HEALTH: HealthChecks(healthy)},
                kinds=all_kinds,
                actor="bench",
            )
            spare = served[1] if timed_apply else None
            await phases(Fleet(lanes, runtime, recorder, served[0], spare), args, results)
    progress(f"{lanes} lanes: done")


async def phases(fleet: Fleet, args: argparse.Namespace, results: Results) -> None:
    lanes = fleet.lanes
    apply_c, _ = apply_concurrency(fleet.runtime.settings, args.apply_concurrency)
    observe_c, _ = observe_concurrency(args.observe_concurrency)
    progress(f"{lanes} lanes: diff + plan, {FIRST_PLAN}")
    results.plans.append(await plan_cpu(fleet, FIRST_PLAN, args, observe_c))
    if lanes > args.skip_converge_above:
        return
    if fleet.spare is not None:
        progress(f"{lanes} lanes: first apply")
        results.apply.append(await first_apply(fleet, args, apply_c))
    else:
        progress(f"{lanes} lanes: converging, untimed")
        await converge_untimed(fleet, args.latency)
    if lanes <= args.skip_pass_above:
        for entry in NOOP_ENTRIES:
            progress(f"{lanes} lanes: no-op {entry}")
            results.passes.append(await noop_pass(fleet, entry, args, observe_c))
    progress(f"{lanes} lanes: diff + plan, {CONVERGED}")
    results.plans.append(await plan_cpu(fleet, CONVERGED, args, observe_c))


# -- output ---------------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def _x(value: float, bound: float) -> str:
    return f"{value / bound:.1f}x" if bound > 0 else "-"


def machine() -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 1) for x in os.getloadavg()],  # others' work skews wall times
    }


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table; columns whose first cell reads as a number are right-aligned."""
    if not rows:
        return []
    align = ["---:" if str(cell)[:1].isdigit() else "---" for cell in rows[0]]
    return [
        title,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
        "",
    ]


def render(results: Results) -> str:
    c, m = results.config, results.config["machine"]
    out = [
        f"Fleet speed, {c['date']}: {m['nproc']} CPUs, {m['ram_gib']} GiB, Python {m['python']}, "
        f"load average {m['load_average'][0]} at start. Dokploy emulator over loopback HTTP: "
        f"{c['latency'] * 1000:g} ms per call, builds {c['build_seconds']:g} s, deploy poll "
        f"{c['deploy_poll_seconds']:g} s. Concurrency assumed: observe {c['observe_concurrency']} "
        f"({c['observe_concurrency_from']}), apply {c['apply_concurrency']} "
        f"({c['apply_concurrency_from']}).",
        "",
    ]
    out += table(
        "No-op pass over a converged fleet. Lower bound: calls / observe concurrency x latency; "
        "naive: the same requests replayed one at a time.",
        [
            "lanes",
            "entry point",
            "calls",
            "budget 2+N",
            "wall",
            "lower bound",
            "wall/bound",
            "naive serial",
            "Setpoint CPU",
            "naive CPU",
            "emulator CPU",
        ],
        [
            [
                r.lanes,
                f"`{r.entry}`",
                r.calls,
                r.budget,
                _s(r.wall_s),
                _s(r.lower_bound_s),
                _x(r.wall_s, r.lower_bound_s),
                _s(r.naive_s),
                _s(r.cpu_s),
                _s(r.naive_cpu_s),
                _s(r.emulator_cpu_s),
            ]
            for r in results.passes
        ],
    )
    out += table(
        "First apply from an empty Dokploy: `compute_plan` + `apply_plan` over every lane. Lower "
        "bound: calls / apply concurrency x latency + deploys x build (one build at a time); naive: "
        "the same requests one at a time, each build sat out.",
        [
            "lanes",
            "actions",
            "calls",
            "deploys",
            "plan",
            "apply",
            "total wall",
            "lower bound",
            "wall/bound",
            "naive serial",
            "Setpoint CPU",
            "naive CPU",
            "emulator CPU",
        ],
        [
            [
                r.lanes,
                r.actions,
                r.calls,
                r.deploys,
                _s(r.plan_s),
                _s(r.apply_s),
                _s(r.wall_s),
                _s(r.lower_bound_s),
                _x(r.wall_s, r.lower_bound_s),
                _s(r.naive_s),
                _s(r.cpu_s),
                _s(r.naive_cpu_s),
                _s(r.emulator_cpu_s),
            ]
            for r in results.apply
        ],
    )
    out += table(
        "Diff and plan: the observation read once (calls, wall against calls / observe "
        "concurrency x latency, CPU), then `process_time` of the lane diffs + `build_plan` only "
        "(best of the repeats); peaks over load + observe + diff + plan (RSS: high-water mark reset before the load, measured without tracemalloc).",
        [
            "lanes",
            "state",
            "actions",
            "load context CPU",
            "observe calls",
            "observe wall",
            "observe bound",
            "observe CPU",
            "diff + plan CPU",
            "traced peak",
            "RSS peak",
            "whole compute_plan CPU",
            "its traced peak",
        ],
        [
            [
                r.lanes,
                r.state,
                r.actions,
                f"{r.load_cpu_s:.3f} s",
                r.observe_calls,
                _s(r.observe_wall_s),
                _s(r.observe_bound_s),
                f"{r.observe_cpu_s:.3f} s",
                f"{r.diff_plan_cpu_s:.3f} s",
                f"{r.traced_peak_mb:.1f} MB",
                f"{r.rss_peak_mb:.0f} MB",
                f"{r.compute_plan_cpu_s:.3f} s",
                f"{r.compute_plan_traced_mb:.1f} MB",
            ]
            for r in results.plans
        ],
    )
    out += table("Targets", ["target", "measured", "verdict"], targets(results))
    out += results.notes
    return "\n".join(out)


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"**missed**: {miss}"


def _noop_targets(results: Results) -> list[tuple[str, str, str]]:
    rows = []
    for r in (r for r in results.passes if r.lanes == NOOP_TARGET_LANES):
        allowed = NOOP_TARGET_FACTOR * r.lower_bound_s
        rows.append(
            (
                f"`{r.entry}`, {r.lanes} lanes: within {NOOP_TARGET_FACTOR:g}x of lower bound",
                f"{_s(r.wall_s)} vs bound {_s(r.lower_bound_s)} ({_x(r.wall_s, r.lower_bound_s)})",
                _verdict(r.wall_s <= allowed, f"{r.wall_s / allowed:.1f}x over {_s(allowed)}"),
            )
        )
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r.by_procedure.items()))
        rows.append(
            (
                f"`{r.entry}`, {r.lanes} lanes: calls <= 2 + 1 per lane",
                f"{r.calls} ({calls})",
                _verdict(r.calls <= r.budget, f"{r.calls - r.budget} over {r.budget}"),
            )
        )
    return rows or [(f"no-op pass, {NOOP_TARGET_LANES} lanes", "not measured", "-")]


def _apply_targets(results: Results) -> list[tuple[str, str, str]]:
    rows = [
        (
            f"first apply, {a.lanes} lanes: under {APPLY_TARGET_SECONDS:g} s",
            _s(a.wall_s),
            _verdict(
                a.wall_s < APPLY_TARGET_SECONDS,
                f"{a.wall_s / APPLY_TARGET_SECONDS:.1f}x the target",
            ),
        )
        for a in results.apply
        if a.lanes == APPLY_TARGET_LANES
    ]
    return rows or [(f"first apply, {APPLY_TARGET_LANES} lanes", "not measured", "-")]


def _plan_targets(results: Results) -> list[tuple[str, str, str]]:
    rows = []
    for p in (p for p in results.plans if p.lanes == PLAN_TARGET_LANES):
        cpu_ok = p.diff_plan_cpu_s < PLAN_TARGET_CPU_SECONDS
        rows.append(
            (
                f"diff + plan, {p.lanes} lanes, {p.state}: under {PLAN_TARGET_CPU_SECONDS:g} s CPU",
                f"{p.diff_plan_cpu_s:.2f} s",
                _verdict(cpu_ok, f"{p.diff_plan_cpu_s / PLAN_TARGET_CPU_SECONDS:.1f}x the target"),
            )
        )
        peak = p.traced_peak_mb
        rows.append(
            (
                f"diff + plan, {p.lanes} lanes, {p.state}: under {PLAN_TARGET_PEAK_MB:g} MB peak",
                f"traced {p.traced_peak_mb:.0f} MB (RSS peak {p.rss_peak_mb:.0f} MB)",
                _verdict(
                    peak < PLAN_TARGET_PEAK_MB, f"{peak / PLAN_TARGET_PEAK_MB:.1f}x the target"
                ),
            )
        )
    return rows or [(f"diff + plan, {PLAN_TARGET_LANES} lanes", "not measured", "-")]


def targets(results: Results) -> list[tuple[str, str, str]]:
    return [*_noop_targets(results), *_apply_targets(results), *_plan_targets(results)]


# -- command line ---------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or any(n < 2 or n % 2 for n in sizes):
        raise argparse.ArgumentTypeError(
            "lane counts must be even numbers >= 2 (two lanes a product)"
        )
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--lanes",
        type=_sizes,
        default=[100],
        help="fleet sizes in lanes, comma-separated (default 100)",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.020,
        help="seconds the emulator waits per call (default 0.02)",
    )
    p.add_argument(
        "--build-seconds", type=float, default=0.2, help="simulated build time (default 0.2)"
    )
    p.add_argument(
        "--deploy-poll-seconds",
        type=float,
        default=0.1,
        help="Settings.deploy_poll_seconds for the apply (default 0.1; 0 or less: the engine's default)",
    )
    p.add_argument(
        "--skip-apply-above",
        type=int,
        default=1000,
        help="time the first apply only up to this many lanes",
    )
    p.add_argument(
        "--skip-pass-above",
        type=int,
        default=1000,
        help="time no-op passes only up to this many lanes",
    )
    p.add_argument(
        "--skip-converge-above",
        type=int,
        default=10_000,
        help="above this many lanes, only the first plan's diff + plan is measured",
    )
    p.add_argument("--env-keys", type=int, default=1, help="env keys per product (default 1)")
    p.add_argument("--domains", type=int, default=1, help="domains per lane (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="diff + plan repeats; the best is kept")
    p.add_argument(
        "--apply-concurrency",
        type=int,
        default=None,
        help="assume this for the apply's lower bound",
    )
    p.add_argument(
        "--observe-concurrency",
        type=int,
        default=None,
        help="assume this for the pass's lower bound",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a CPU profile of each timed phase to this directory (times are inflated)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    return p


async def run(args: argparse.Namespace) -> Results:
    settings = settings_for(args)
    apply_c, apply_from = apply_concurrency(settings, args.apply_concurrency)
    observe_c, observe_from = observe_concurrency(args.observe_concurrency)
    results = Results(
        config={
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": machine(),
            "lanes": args.lanes,
            "latency": args.latency,
            "build_seconds": args.build_seconds,
            "deploy_poll_seconds": settings.deploy_poll_seconds,
            "apply_concurrency": apply_c,
            "apply_concurrency_from": apply_from,
            "observe_concurrency": observe_c,
            "observe_concurrency_from": observe_from,
        }
    )
    for lanes in args.lanes:
        progress(f"{lanes} lanes: storing the fleet")
        await measure(args, lanes, results)
    if any(r.lanes > args.skip_apply_above for r in results.plans):
        results.notes.append(
            f"Above {args.skip_apply_above} lanes the fleet was converged untimed (no latency, no build time)."
        )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.deploy_poll_seconds is not None and args.deploy_poll_seconds <= 0:
        args.deploy_poll_seconds = None
    if args.profile is not None:
        profile_inline()
    results = asyncio.run(run(args))
    print(render(results))
    if args.json is not None:
        payload = {
            **dataclasses.asdict(results),
            "targets": [{"target": t, "measured": m, "verdict": v} for t, m, v in targets(results)],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
