"""Reusable Dokploy fixtures: an in-process emulator and a contract-checked client.

Other suites can load them with `pytest_plugins = ["tests.providers.dokploy.fixtures"]`
in the root conftest. `dokploy_client` talks to the emulator through the
contract-recording transport, so every request is checked against the OpenAPI contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator, create_app
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.support.timeouts import EMULATOR_TIMEOUT_SECONDS

API_KEY = "test-key-not-secret"
BASE_URL = "http://dokploy.test"
# Small enough to keep the suite fast, large enough that a poll sees `running` first.
BUILD_SECONDS = 0.05


@pytest.fixture(scope="session")
def dokploy_contract() -> Iterator[ContractRecorder]:
    recorder = ContractRecorder()
    yield recorder
    assert not recorder.violations, "requests broke the Dokploy contract:\n" + "\n".join(
        recorder.violations
    )


@pytest.fixture
def dokploy_emulator() -> Starlette:
    return create_app(api_key=API_KEY, seed=7, build_seconds=BUILD_SECONDS)


@pytest.fixture
def emulator(dokploy_emulator: Starlette) -> Emulator:
    emu: Emulator = dokploy_emulator.state.emulator
    return emu


def make_client(
    app: Starlette,
    recorder: ContractRecorder,
    *,
    api_key: str = API_KEY,
    timeout: float = EMULATOR_TIMEOUT_SECONDS,
    retry_attempts: int = 3,
) -> DokployClient:
    transport = RecordingTransport(httpx.ASGITransport(app=app), recorder)
    return DokployClient(
        BASE_URL,
        api_key,
        timeout=timeout,
        transport=transport,
        retry_attempts=retry_attempts,
        backoff_base=0.001,
        backoff_max=0.01,
        retry_after_cap=0.05,
    )


@pytest.fixture
async def dokploy_client(
    dokploy_emulator: Starlette, dokploy_contract: ContractRecorder
) -> AsyncIterator[DokployClient]:
    async with make_client(dokploy_emulator, dokploy_contract) as client:
        yield client


@pytest.fixture
async def raw_http(dokploy_emulator: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Unchecked HTTP to the emulator, for sending requests the client never would."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dokploy_emulator),
        base_url=BASE_URL,
        headers={"x-api-key": API_KEY},
    ) as http:
        yield http
