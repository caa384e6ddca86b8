"""The emulator's in-memory Dokploy: rows, ids, builds and what is live.

Build progress is computed from the clock whenever state is read (`tick`), not by
background tasks, so it behaves the same in-process (httpx ASGITransport) and under
uvicorn. `advance()` moves the emulator's clock for tests that must not sleep.

Builds queue as on a real Dokploy v0.30 server: one build at a time per server (the
Dokploy host itself, or a remote server a service names), first in first out across all
its services, and a deployment row appears only when its build starts. `parallel_builds`
keeps the older behaviour (every service builds at once, one build at a time per service).
A build stuck by the `stuck_deployment` fault hangs itself only, not the builds queued
after it, so a test can hang one lane without hanging the rest.
"""

from __future__ import annotations

import copy
import math
import random
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from providers.dokploy.emulator.deploy_env import deployed_env
from providers.dokploy.emulator.faults import FaultController
from providers.dokploy.emulator.runners import RunnerLinkLike, runner_started

ServiceKind = Literal["application", "compose"]
_ID_ALPHABET = string.ascii_letters + string.digits + "_-"
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_WORDS_A = ("quiet", "rapid", "bold", "calm", "bright", "solid", "swift", "lucid")
_WORDS_B = ("harbor", "falcon", "circuit", "meadow", "beacon", "summit", "quartz", "delta")
KEPT_DEPLOYMENTS = 10


@dataclass
class Build:
    service_id: str
    kind: ServiceKind
    row: dict[str, Any]
    starts_at: float
    finishes_at: float
    outcome: Literal["done", "error"]
    error_message: str | None
    applies: dict[str, Any]
    problem: str | None = None  # why the build fails, when it is the service's own fault
    started: bool = False
    settled: bool = False
    # The deployment's log file (Dokploy's `logPath`): what `deployment.readLogs` tails.
    log: list[str] = field(default_factory=list)


@dataclass
class Live:
    """What a service runs now: set by the last successful deploy, not by saved config."""

    env: str | None = None
    # What its containers got from `env` (dotenv's parse, references resolved): values are
    # secrets, so never in a repr.
    container_env: dict[str, str] | None = field(default=None, repr=False)
    docker_image: str | None = None
    compose_file: str | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)
    # Swarm's replica count: application.update saves `replicas`; a deploy applies it.
    replicas: int | None = None


class EmulatorState:
    def __init__(
        self,
        *,
        seed: int,
        build_seconds: float,
        faults: FaultController,
        parallel_builds: bool = False,
    ) -> None:
        self.seed = seed
        self.build_seconds = build_seconds
        self.parallel_builds = parallel_builds
        # When each build queue is next free: per server (queued builds) or per service.
        self._queue_free_at: dict[str, float] = {}
        self.faults = faults
        self.rng = random.Random(seed)  # noqa: S311 -- deterministic ids, not security
        self._offset = 0.0
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self.projects: dict[str, dict[str, Any]] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self.applications: dict[str, dict[str, Any]] = {}
        self.composes: dict[str, dict[str, Any]] = {}
        self.domains: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, dict[str, Any]] = {}
        self.builds: dict[str, list[Build]] = {}
        # Services with a build not yet settled, in the order they were queued: all that
        # tick() has to visit (a fleet of thousands must not cost a scan per request).
        self._unsettled: dict[str, None] = {}
        self.live: dict[str, Live] = {}
        self.organization_id = self.new_id()
        self.user_id = self.new_id()
        # Set by `Emulator.link_runners`: runner applications come online in GitHub's emulator.
        self.runner_link: RunnerLinkLike | None = None

    # -- clock and ids --------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
        self.tick()

    def iso(self, at: float | None = None) -> str:
        at = self.now() if at is None else at
        stamp = datetime.fromtimestamp(self._wall0 + (at - self._mono0), UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def new_id(self) -> str:
        return "".join(self.rng.choice(_ID_ALPHABET) for _ in range(21))

    def suffix(self) -> str:
        return "".join(self.rng.choice(_SUFFIX_ALPHABET) for _ in range(6))

    def app_name(self, given: str | None, prefix: str) -> str:
        if given:
            return f"{given}-{self.suffix()}"
        words = f"{self.rng.choice(_WORDS_A)}-{self.rng.choice(_WORDS_B)}"
        return f"{prefix}-{words}-{self.suffix()}"

    def app_name_taken(self, app_name: str, except_id: str | None = None) -> bool:
        for sid, row in (*self.applications.items(), *self.composes.items()):
            if row.get("appName") == app_name and sid != except_id:
                return True
        return False

    # -- builds ---------------------------------------------------------------------------

    def service(self, service_id: str) -> tuple[ServiceKind, dict[str, Any]] | None:
        if service_id in self.applications:
            return "application", self.applications[service_id]
        if service_id in self.composes:
            return "compose", self.composes[service_id]
        return None

    def _status_key(self, kind: ServiceKind) -> str:
        return "applicationStatus" if kind == "application" else "composeStatus"

    def queue_build(
        self, kind: ServiceKind, service_id: str, title: str | None, description: str | None
    ) -> None:
        row = self.applications[service_id] if kind == "application" else self.composes[service_id]
        queue = self.builds.setdefault(service_id, [])
        lane = service_id if self.parallel_builds else f"server:{row.get('serverId') or ''}"
        start = max(self.now(), self._queue_free_at.get(lane, 0.0))
        self._queue_free_at[lane] = start + self.build_seconds
        stuck = self.faults.build_is_stuck(service_id)
        container_env, env_problem = deployed_env(self.projects, self.environments, row)
        problem = self._build_problem(kind, row) or env_problem
        failing = self.faults.take_failing_deploy(service_id)
        outcome: Literal["done", "error"] = "error" if problem or failing else "done"
        applies = {
            "env": row.get("env"),
            "container_env": container_env,
            "docker_image": row.get("dockerImage"),
            "compose_file": row.get("composeFile"),
            "replicas": row.get("replicas") if kind == "application" else None,
            "routes": [
                copy.deepcopy(d) for d in self.domains.values() if d.get("composeId") == service_id
            ],
        }
        deployment_id = self.new_id()
        log_path = f"/etc/dokploy/logs/{row['appName']}/{row['appName']}-{deployment_id}.log"
        queue.append(
            Build(
                service_id=service_id,
                kind=kind,
                row={
                    "deploymentId": deployment_id,
                    "title": title or "Manual deployment",
                    "description": description or "",
                    "status": "running",
                    "logPath": log_path,
                    "pid": None,
                    "applicationId": service_id if kind == "application" else None,
                    "composeId": service_id if kind == "compose" else None,
                    "serverId": row.get("serverId"),
                    "isPreviewDeployment": False,
                    "previewDeploymentId": None,
                    "createdAt": None,
                    "startedAt": None,
                    "finishedAt": None,
                    "errorMessage": None,
                    "scheduleId": None,
                    "backupId": None,
                    "rollbackId": None,
                    "volumeBackupId": None,
                    "buildServerId": None,
                },
                starts_at=start,
                finishes_at=math.inf if stuck else start + self.build_seconds,
                outcome=outcome,
                problem=problem,
                # Real Dokploy leaves a failed deployment's errorMessage null (the reason
                # is in its log); Setpoint must not count on one.
                error_message=None,
                applies=applies,
            )
        )
        self._unsettled[service_id] = None
        self.tick()

    @staticmethod
    def _build_problem(kind: ServiceKind, row: dict[str, Any]) -> str | None:
        if kind == "compose":
            return None if row.get("composeFile") else "Compose file is empty"
        if row.get("sourceType") == "docker":
            return None if row.get("dockerImage") else "Docker image is required"
        if row.get("repository") or row.get("customGitUrl"):
            return None
        return "No source configured for this application"

    def tick(self) -> None:
        """Start and finish builds whose time has come, applying their effects."""
        now = self.now()
        for service_id in list(self._unsettled):
            queue = self.builds.get(service_id, [])
            found = self.service(service_id)
            for build in queue:
                if not build.started and build.starts_at <= now:
                    build.started = True
                    build.row["createdAt"] = build.row["startedAt"] = self.iso(build.starts_at)
                    build.log.extend(_log_start(build))
                    if found:
                        found[1][self._status_key(found[0])] = "running"
                if build.started and not build.settled and build.finishes_at <= now:
                    build.settled = True
                    build.row["status"] = build.outcome
                    build.row["finishedAt"] = self.iso(build.finishes_at)
                    build.row["errorMessage"] = build.error_message
                    build.log.extend(_log_end(build))
                    if found:
                        found[1][self._status_key(found[0])] = build.outcome
                        if build.outcome == "done":
                            self._apply(service_id, found[0], build.applies)
            started = [b for b in queue if b.started]
            for old in started[:-KEPT_DEPLOYMENTS]:
                queue.remove(old)
            if all(b.settled for b in queue):
                del self._unsettled[service_id]

    def _apply(self, service_id: str, kind: ServiceKind, applies: dict[str, Any]) -> None:
        live = self.live.setdefault(service_id, Live())
        live.env = applies["env"]
        live.container_env = applies["container_env"]
        live.docker_image = applies["docker_image"]
        live.compose_file = applies["compose_file"]
        live.replicas = applies["replicas"]
        if kind == "compose":
            live.routes = applies["routes"]
        else:
            runner_started(self.runner_link, live.env)

    def serves(self, host: str) -> bool:
        """Whether a service runs (has deployed) behind a route for `host`."""
        self.tick()
        return any(
            live.docker_image is not None or live.compose_file is not None
            for live in self.live.values()
            if any(str(route.get("host", "")).lower() == host for route in live.routes)
        )

    def env_behind(self, host: str) -> dict[str, str]:
        """What the containers of the running service behind a route for `host` got."""
        self.tick()
        for live in self.live.values():
            if any(str(route.get("host", "")).lower() == host for route in live.routes):
                return dict(live.container_env or {})
        return {}

    def refresh_application_routes(self, application_id: str) -> None:
        # Application domains go live at once (Dokploy rewrites Traefik on save);
        # compose domains wait for the next deploy.
        live = self.live.setdefault(application_id, Live())
        live.routes = [
            copy.deepcopy(d)
            for d in self.domains.values()
            if d.get("applicationId") == application_id
        ]

    def deployment_log(self, deployment_id: str) -> list[str] | None:
        """The log lines of a listed deployment; None when no such deployment is kept."""
        self.tick()
        for queue in self.builds.values():
            for build in queue:
                if build.started and build.row["deploymentId"] == deployment_id:
                    return list(build.log)
        return None

    def deployments(self, service_id: str) -> list[dict[str, Any]]:
        started = [b for b in self.builds.get(service_id, []) if b.started]
        return [copy.deepcopy(b.row) for b in reversed(started)]

    def forget_service(self, service_id: str) -> None:
        self.builds.pop(service_id, None)
        self.live.pop(service_id, None)
        for domain_id in [
            k
            for k, d in self.domains.items()
            if service_id in (d.get("applicationId"), d.get("composeId"))
        ]:
            del self.domains[domain_id]


def _log_start(build: Build) -> list[str]:
    image = build.applies.get("docker_image")
    source = f"Pulling {image}" if image else "Preparing the compose file"
    return [f"Initializing deployment {build.row['deploymentId']}", source]


def _log_end(build: Build) -> list[str]:
    """The last lines a real build writes: v0.30.2 ends a failed pull with `❌ Pulling image
    failed` (tests/contracts/dokploy-real-v0.30.2/README.md)."""
    if build.outcome == "done":
        return ["Docker deployed: ✅"]
    reason = build.problem or "Error response from daemon: pull access denied (emulated failure)"
    return [reason, "❌ Pulling image failed"]
