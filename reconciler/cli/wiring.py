"""Build the engine's Runtime for a CLI command from settings and the environment."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from providers.dokploy.config import DokployConfig
from providers.github.client import GitHubClient
from providers.github.config import GitHubConfig
from reconciler.cli import context
from reconciler.cli.output import fail
from reconciler.errors import SecretStoreError
from reconciler.health import HealthResult, check_http
from reconciler.kinds import all_kinds
from reconciler.records.secret_store import SecretStore
from reconciler.runtime import Progress, Runtime


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
    except ValidationError:
        raise fail(
            "Dokploy is not configured: set SETPOINT_DOKPLOY_URL and SETPOINT_DOKPLOY_API_KEY "
            "(or try `setpoint demo`, which brings its own emulator)"
        ) from None


def secret_store(engine: Engine) -> SecretStore | None:
    """The encrypted store when SETPOINT_SECRET_STORE_KEY is set, else None."""
    key = context.settings().secret_store_key
    if key is None:
        return None
    try:
        return SecretStore(engine, key.get_secret_value())
    except SecretStoreError as exc:
        raise fail(str(exc)) from None


@asynccontextmanager
async def open_runtime(progress: Progress | None = None) -> AsyncIterator[Runtime]:
    settings = context.settings()
    config = dokploy_config()
    allow = tuple(settings.health_allow_hosts)

    async def health(url: str, expect_status: int, timeout: float) -> HealthResult:
        return await check_http(
            url, expect_status=expect_status, timeout=timeout, allow_hosts=allow
        )

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DokployClient(
                config.url,
                config.api_key.get_secret_value(),
                timeout=config.timeout_seconds,
                retry_attempts=config.retry_attempts,
            )
        )
        providers: dict[str, object] = {"dokploy": client}
        github = GitHubConfig()
        if github.token is not None:  # previews need it; without it they are not reconciled
            providers["github"] = await stack.enter_async_context(GitHubClient.from_config(github))
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
