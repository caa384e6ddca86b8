"""Build the engine's Runtime for a CLI command from settings and the environment."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

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
from reconciler.fleet import load_fleet
from reconciler.kinds import all_kinds, dokploy_reads_in_flight, providers_needed
from reconciler.records.secret_store import SecretStore
from reconciler.runtime import Progress, Runtime
from reconciler.settings import describe_invalid


def default_actor() -> str:
    configured = context.settings().actor
    if configured:
        return configured
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


DOKPLOY_NOT_CONFIGURED = (
    "Dokploy is not configured: set SETPOINT_DOKPLOY_URL and SETPOINT_DOKPLOY_API_KEY"
)


def dokploy_config() -> DokployConfig | None:
    """The Dokploy settings; None when neither its URL nor its key is set (a deployment of
    runners on SSH hosts needs no Dokploy). Half of them set is a mistake, said in one line."""
    try:
        return DokployConfig()  # read from the environment
    except ValidationError as exc:
        missing = {str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"}
        if missing == {"url", "api_key"}:
            return None
        if missing:
            raise fail(DOKPLOY_NOT_CONFIGURED) from None
        raise fail(describe_invalid(exc, prefix="SETPOINT_DOKPLOY_")) from None


def require_providers(engine: Engine, configured: Collection[str]) -> None:
    """Fail in one line when the desired state declares something no configured provider
    can reconcile (products without Dokploy, runner pools without GitHub)."""
    needed = providers_needed(load_fleet(engine))
    for provider, needed_by in needed.items():
        if provider not in configured:
            how = HOW_TO.get(provider, "see docs/cli.md for its settings")
            raise fail(f"{needed_by} needs {provider}, which is not configured: {how}")


# How to configure each provider the kinds use, for `require_providers`' one line.
HOW_TO = {
    "dokploy": "set SETPOINT_DOKPLOY_URL and SETPOINT_DOKPLOY_API_KEY",
    "github": "set SETPOINT_GITHUB_TOKEN (and SETPOINT_GITHUB_API_URL for GitHub Enterprise)",
}


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


def secret_store(engine: Engine, clock: Callable[[], datetime]) -> SecretStore | None:
    """The encrypted store when SETPOINT_SECRET_STORE_KEY is set, else None; its writes are
    stamped by `clock` (the runtime's `now`, when there is a runtime)."""
    key = context.settings().secret_store_key
    if key is None:
        return None
    try:
        return SecretStore(engine, key.get_secret_value(), clock=clock)
    except SecretStoreError as exc:
        raise fail(str(exc)) from None


async def _open_providers(stack: AsyncExitStack) -> dict[str, object]:
    """The providers configured, by name, each closed with `stack`: only these are used."""
    providers: dict[str, object] = {}
    config = dokploy_config()
    if config is not None:  # products and previews, and runners on Dokploy servers
        providers["dokploy"] = await stack.enter_async_context(
            DokployClient(
                config.url,
                config.api_key.get_secret_value(),
                timeout=config.timeout_seconds,
                retry_attempts=config.retry_attempts,
                deploy_parallelism=config.deploy_parallelism,
                max_connections=dokploy_reads_in_flight(context.settings().apply_concurrency),
            )
        )
    github = GitHubConfig()
    if github.token is not None:  # previews and runners need it
        providers["github"] = await stack.enter_async_context(GitHubClient.from_config(github))
    ssh = ssh_config()
    if ssh is not None:  # runner hosts of type ssh; without it their pools are blocked
        providers["ssh"] = ssh
    return providers


@asynccontextmanager
async def open_runtime(
    progress: Progress | None = None, *, check_config: bool = False
) -> AsyncIterator[Runtime]:
    """The runtime, with the providers configured; with `check_config`, a wrong Dokploy URL
    or key fails first, in one line. Fails in one line when the desired state needs a
    provider that is not configured (`require_providers`)."""
    settings = context.settings()

    async with AsyncExitStack() as stack:
        providers = await _open_providers(stack)
        if not providers:  # before the database: nothing could be reconciled anyway
            raise fail(
                f"{DOKPLOY_NOT_CONFIGURED} (and SETPOINT_GITHUB_TOKEN for previews and "
                "runners), or try `setpoint demo`, which brings its own emulators"
            )
        client = providers.get("dokploy")
        if check_config and isinstance(client, DokployClient):
            await check_dokploy(client)
        engine = context.ready_engine()
        require_providers(engine, providers)
        runtime = Runtime(
            database=engine,
            settings=settings,
            actor=default_actor(),
            kinds=all_kinds,
            providers=providers,
        )
        runtime.secret_store = secret_store(engine, runtime.now)  # on the runtime's clock
        if progress is not None:
            runtime.progress = progress
        yield runtime
