"""The API on a test database (both backends), its OIDC tokens from the GitHub emulator's
issuer (real RS256 tokens, checked against the emulator's JWKS), in process over ASGI."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github_emulator
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.records import audit, grants, operator_tokens
from reconciler.records.audit import AuditRecord
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.grants import GrantSpec
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.runtime import Runtime, utcnow
from tests.reconciler.conftest import (  # noqa: F401 -- fixtures the API's runtime is built from
    dokploy_app,
    engine_contract,
    runtime,
    workload,
)
from tests.support.timeouts import EMULATOR_TIMEOUT_SECONDS

AUDIENCE = "setpoint"
WEBHOOK_SECRET = "whsec-api-tests-0123456789abcdef"
SHOP_REPOSITORY_ID = 101  # the emulator issuer's default `repository_id` (acme/shop)

Mint = Callable[..., str]


@pytest.fixture
def github_emulator() -> FastAPI:
    return create_github_emulator(seed=7)


@pytest.fixture
def github_state(github_emulator: FastAPI) -> EmulatorState:
    state: EmulatorState = github_emulator.state.emulator
    return state


@pytest.fixture
def mint(github_state: EmulatorState) -> Mint:
    """A fresh OIDC token per call, as a workflow mints one per request."""

    def mint_token(claims: dict[str, Any] | None = None, **options: Any) -> str:
        return github_state.mint_oidc_token(claims, **options)

    return mint_token


@pytest.fixture
def api_runtime(runtime: Runtime) -> Runtime:  # noqa: F811 -- the fixture imported above
    settings = runtime.settings.model_copy(
        update={"api_webhook_secret": SecretStr(WEBHOOK_SECRET), "api_max_body_bytes": 4096}
    )
    return dataclasses.replace(runtime, settings=settings)


@pytest.fixture
async def github_runtime(api_runtime: Runtime, github_emulator: FastAPI) -> AsyncIterator[Runtime]:
    """The service's runtime with GitHub too (the emulator): the preview kind is on, so a
    pull request's webhook concerns its preview lanes."""
    transport = httpx.ASGITransport(app=github_emulator)
    async with GitHubClient(
        "http://github.test",
        "ghp_apitests0123456789abcdef",
        transport=transport,
        timeout=EMULATOR_TIMEOUT_SECONDS,
    ) as github:
        yield dataclasses.replace(
            api_runtime, providers={**api_runtime.providers, "github": github}
        )


@pytest.fixture
async def webhook_client(github_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the runtime with GitHub, for webhook deliveries."""
    transport = httpx.ASGITransport(app=create_service(github_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://setpoint.test") as http:
        yield http


@pytest.fixture
async def api(
    api_runtime: Runtime, github_emulator: FastAPI, engine: Engine
) -> AsyncIterator[FastAPI]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=github_emulator)) as jwks:
        verifier = OidcVerifier(
            DEFAULT_ISSUER,
            AUDIENCE,
            http=jwks,
            replay_store=DatabaseReplayStore(engine, clock=utcnow),
        )
        yield create_service(api_runtime, verifier=verifier)


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://setpoint.test") as http:
        yield http


def add_grant(engine: Engine, lanes: str, *, allow_apply: bool = False, **fields: Any) -> str:
    spec = GrantSpec(
        repository_id=fields.pop("repository_id", SHOP_REPOSITORY_ID),
        repository="acme/shop",
        lanes=lanes,
        allow_apply=allow_apply,
        **fields,
    )
    with session_scope(engine) as session:
        return grants.add_grant(session, spec, "test", utcnow()).id


@pytest.fixture
def operator_token(engine: Engine) -> str:
    with session_scope(engine) as session:
        return operator_tokens.issue(session, "alice", utcnow()).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_events(engine: Engine, event: AuditEvent) -> list[AuditRecord]:
    with session_scope(engine) as session:
        return audit.list_records(session, event=event, limit=1000)
