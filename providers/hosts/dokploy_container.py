"""The Dokploy container host adapter: a runner is a Dokploy application running the pool's
runner image, on the Dokploy server the Host names.

Runners of one host live in one environment, named after the host, of the project
`setpoint-runners`; everything in that environment is this adapter's, and nothing outside it
is ever touched. The registration secret reaches the container only through the
application's env (`ACTIONS_RUNNER_INPUT_JITCONFIG`, which the runner reads as its
`--jitconfig` argument), never a command line; env is written with `saveEnvironment` and
takes effect on the deploy that follows, as Dokploy requires.
"""

from __future__ import annotations

from providers.dokploy.client import DokployClient
from providers.dokploy.ensure import ProjectIndex, ensure_application
from providers.dokploy.envfile import render_pair
from providers.dokploy.errors import DokployError, DokployNotFound
from providers.dokploy.models import Application, Environment
from providers.hosts.base import ProcessState, RunnerLaunch, RunnerProcess

PROJECT = "setpoint-runners"
# The runner reads ACTIONS_RUNNER_INPUT_<ARG> as its command-line argument <arg>.
ENV_JIT_CONFIG = "ACTIONS_RUNNER_INPUT_JITCONFIG"
ENV_TOKEN = "ACTIONS_RUNNER_INPUT_TOKEN"  # noqa: S105 -- a variable name, not a value
ENV_URL = "ACTIONS_RUNNER_INPUT_URL"
ENV_NAME = "ACTIONS_RUNNER_INPUT_NAME"
ENV_LABELS = "ACTIONS_RUNNER_INPUT_LABELS"
ENV_EPHEMERAL = "ACTIONS_RUNNER_INPUT_EPHEMERAL"
DESCRIPTION_PREFIX = "setpoint runner"

# Dokploy's applicationStatus: idle (never deployed, or stopped), running (a build runs),
# done (deployed and started), error (the last deploy failed).
_STATES = {
    "idle": ProcessState.stopped,
    "running": ProcessState.running,
    "done": ProcessState.running,
    "error": ProcessState.failed,
}


def runner_env(launch: RunnerLaunch) -> str:
    """The application's env text; holds the registration secret, so never log it."""
    secret = launch.registration.reveal()
    if "\n" in secret or "\r" in secret:
        raise ValueError("a registration secret never spans lines")
    pairs = [
        ("SETPOINT_RUNNER_NAME", launch.name),
        ("SETPOINT_RUNNER_LANE", launch.lane),
        ("SETPOINT_RUNNER_POOL", launch.pool),
    ]
    if launch.jit:
        pairs.append((ENV_JIT_CONFIG, secret))
    else:
        pairs += [
            (ENV_URL, launch.github_url),
            (ENV_TOKEN, secret),
            (ENV_NAME, launch.name),
            (ENV_LABELS, ",".join(launch.labels)),
            (ENV_EPHEMERAL, "true" if launch.ephemeral else "false"),
        ]
    # Spelled as Dokploy's parser reads it back (a label may hold `#` or quotes).
    lines = [render_pair(key, value) for key, value in pairs]
    return "\n".join(lines) + "\n"


def _description(launch: RunnerLaunch) -> str:
    return f"{DESCRIPTION_PREFIX} lane={launch.lane} pool={launch.pool}"


def _described(description: str | None) -> dict[str, str]:
    words = (description or "").split()
    return dict(w.split("=", 1) for w in words if "=" in w)


class DokployContainerHost:
    """One Host of type `dokploy-server`. `server` is the Dokploy server's name."""

    def __init__(self, client: DokployClient, host: str, server: str) -> None:
        self._client = client
        self._host = host
        self._server = server
        # One index for every start through this adapter: concurrent starts of one apply
        # make the project and environment once (the index locks per name).
        self._index = ProjectIndex(client)

    @property
    def host(self) -> str:
        return self._host

    async def preflight(self) -> str | None:
        """Also checks the Host against the servers Dokploy lists."""
        try:
            servers = await self._client.server_all()
        except DokployError as exc:
            return f"Dokploy could not list its servers: {exc}"
        if not any(s.name == self._server for s in servers):
            listed = ", ".join(sorted(s.name for s in servers)) or "none"
            return f"Dokploy lists no server named {self._server!r} (it lists: {listed})"
        return None

    async def list_processes(self) -> list[RunnerProcess]:
        return [self._process(app) for app in await self._applications()]

    async def start(self, launch: RunnerLaunch) -> RunnerProcess:
        application = await self._application(launch.name)
        if application is None:
            application = await self._create(launch)
        app_id = application.application_id
        await self._client.application_save_docker_provider(app_id, launch.image)
        await self._client.application_save_environment(app_id, runner_env(launch))
        # The deploy starts the container with the env just saved.
        await self._client.application_deploy(app_id, title=f"setpoint: start {launch.name}")
        return RunnerProcess(
            name=launch.name,
            state=ProcessState.running,
            host_ref=app_id,
            lane=launch.lane,
            pool=launch.pool,
        )

    async def stop(self, name: str) -> None:
        application = await self._application(name)
        if application is None:
            return
        try:
            await self._client.application_stop(application.application_id)
        except DokployNotFound:
            return

    async def remove(self, name: str) -> None:
        application = await self._application(name)
        if application is None:
            return
        try:
            # Cleared first: a deleted application's env must not outlive it in a backup.
            await self._client.application_save_environment(application.application_id, None)
            await self._client.application_delete(application.application_id)
        except DokployNotFound:
            return

    def _process(self, app: Application) -> RunnerProcess:
        described = _described(app.description)
        return RunnerProcess(
            name=app.name,
            state=_STATES.get(app.application_status or "idle", ProcessState.failed),
            host_ref=app.application_id,
            lane=described.get("lane"),
            pool=described.get("pool"),
        )

    async def _environments(self) -> list[Environment]:
        """This host's environments: one, unless someone made a second of the same name."""
        return [
            environment
            for project in await self._client.project_all()
            if project.name == PROJECT
            for environment in project.environments
            if environment.name == self._host
        ]

    async def _applications(self) -> list[Application]:
        found: list[Application] = []
        for environment in await self._environments():
            fresh = await self._client.environment_one(environment.environment_id)
            found.extend(fresh.applications)
        return found

    async def _application(self, name: str) -> Application | None:
        return next((a for a in await self._applications() if a.name == name), None)

    async def _server_id(self) -> str:
        for server in await self._client.server_all():
            if server.name == self._server:
                return server.server_id
        raise DokployNotFound(f"Dokploy lists no server named {self._server!r}")

    async def _create(self, launch: RunnerLaunch) -> Application:
        project, _ = await self._index.ensure_project(PROJECT, description="Setpoint's runners")
        environment, _ = await self._index.ensure_environment(project.project_id, self._host)
        # ensure_application looks up by name after a lost answer: never a second runner.
        application, _ = await ensure_application(
            self._client,
            environment.environment_id,
            launch.name,
            app_name=launch.name,
            description=_description(launch),
            server_id=await self._server_id(),
        )
        return application
