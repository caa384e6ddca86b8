"""Build the engine's Runtime for a CLI command from settings and the environment."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.config import DokployConfig
from providers.dokploy.errors import (
    DokployAddressError,
    DokployError,
    DokployForbidden,
    DokployNotFound,
    DokployTransientError,
    DokployUnauthorized,
)
from providers.github.client import GitHubClient
from providers.github.config import GitHubConfig
from providers.hosts.ssh_config import SshHostConfig
from reconciler.cli import context
from reconciler.cli.output import fail
from reconciler.errors import SecretStoreError
from reconciler.health import HealthResult, check_http
from reconciler.kinds import all_kinds
from reconciler.kinds.product.observe import DETAIL_READ_CONCURRENCY
from reconciler.records.secret_store import SecretStore
from reconciler.runtime import HealthProbe, Progress, Runtime
from reconciler.settings import describe_invalid


def default_actor() -> str:
    configured = context.settings().actor
    if configured:
        return configured
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def dokploy_config() -> DokployConfig:
    try:
        return DokployConfig()  # read from the environment
    except ValidationError as exc:
        if any(error["type"] == "missing" for error in exc.errors()):
            raise fail(
                "Dokploy is not configured: set SETPOINT_DOKPLOY_URL and "
                "SETPOINT_DOKPLOY_API_KEY (or try `setpoint demo`, which brings its own emulator)"
            ) from None
        raise fail(describe_invalid(exc, prefix="SETPOINT_DOKPLOY_")) from None


def ssh_config() -> SshHostConfig | None:
    """The SSH host settings when SSH hosts are opted in to (a known_hosts file is set)."""
    try:
        config = SshHostConfig()  # read from the environment
    except ValidationError as exc:
        raise fail(describe_invalid(exc, prefix="SETPOINT_SSH_")) from None
    return config if config.known_hosts_file is not None else None


async def check_dokploy(client: DokployClient) -> None:
    """Fail with one line naming the URL when the URL or the key is wrong: a configuration
    error is not retried and stores no plan. Dokploy being down is left to the plan's gate."""
    where = client.base_url
    try:
        await client.preflight()
    except (DokployUnauthorized, DokployForbidden) as exc:
        raise fail(
            f"Dokploy at {where} refused the API key (HTTP {exc.http_status}): "
            "check SETPOINT_DOKPLOY_API_KEY"
        ) from None
    except DokployNotFound:
        raise fail(
            f"Dokploy's API is not at {where} (HTTP 404 for user.get): "
            "check SETPOINT_DOKPLOY_URL, the address of the Dokploy instance"
        ) from None
    except DokployAddressError as exc:
        raise fail(f"cannot use SETPOINT_DOKPLOY_URL {where}: {exc.message}") from None
    except DokployTransientError:
        return
    except DokployError as exc:
        raise fail(f"Dokploy at {where} did not answer as Dokploy does: {exc}") from None


def secret_store(engine: Engine) -> SecretStore | None:
    """The encrypted store when SETPOINT_SECRET_STORE_KEY is set, else None."""
    key = context.settings().secret_store_key
    if key is None:
        return None
    try:
        return SecretStore(engine, key.get_secret_value())
    except SecretStoreError as exc:
        raise fail(str(exc)) from None


def health_probe(allow_hosts: list[str], route_via: str | None) -> HealthProbe:
    """Health checks as configured: to the domains themselves, or all to `route_via`."""
    allow = tuple(allow_hosts)
    if route_via is None:

        async def direct(url: str, expect_status: int, timeout: float) -> HealthResult:
            return await check_http(
                url, expect_status=expect_status, timeout=timeout, allow_hosts=allow
            )

        return direct
    via = httpx.URL(route_via)

    async def routed(url: str, expect_status: int, timeout: float) -> HealthResult:
        async def to_via(host: str, port: int) -> list[str]:
            return [via.host]

        return await check_http(
            url,
            expect_status=expect_status,
            timeout=timeout,
            allow_hosts=(*allow, httpx.URL(url).host),
            resolver=to_via,
            transport=RouteVia(via),
        )

    return routed


class RouteVia(httpx.AsyncHTTPTransport):
    """Sends each request to one plain-HTTP address, keeping its Host header."""

    def __init__(self, via: httpx.URL) -> None:
        super().__init__()
        self._via = via

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._via.host, port=self._via.port)
        request.extensions.pop("sni_hostname", None)
        return await super().handle_async_request(request)


@asynccontextmanager
async def open_runtime(
    progress: Progress | None = None, *, check_config: bool = False
) -> AsyncIterator[Runtime]:
    """The runtime; with `check_config`, a wrong Dokploy URL or key fails first, in one line."""
    settings = context.settings()
    config = dokploy_config()
    health = health_probe(settings.health_allow_hosts, settings.health_route_via)

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DokployClient(
                config.url,
                config.api_key.get_secret_value(),
                timeout=config.timeout_seconds,
                retry_attempts=config.retry_attempts,
                deploy_parallelism=config.deploy_parallelism,
                max_connections=DETAIL_READ_CONCURRENCY + settings.apply_concurrency,
            )
        )
        providers: dict[str, object] = {"dokploy": client}
        github = GitHubConfig()
        if github.token is not None:  # previews need it; without it they are not reconciled
            providers["github"] = await stack.enter_async_context(GitHubClient.from_config(github))
        ssh = ssh_config()
        if ssh is not None:  # runner hosts of type ssh; without it their pools are blocked
            providers["ssh"] = ssh
        if check_config:
            await check_dokploy(client)
        engine = context.ready_engine()
        runtime = Runtime(
            engine=engine,
            settings=settings,
            actor=default_actor(),
            health_check=health,
            kinds=all_kinds,
            providers=providers,
            secret_store=secret_store(engine),
        )
        if progress is not None:
            runtime.progress = progress
        yield runtime
