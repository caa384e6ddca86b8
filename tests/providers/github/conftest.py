"""Fixtures for the GitHub provider: an in-process emulator and a client whose every
exchange is checked against GitHub's REST description when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState, create_app
from tests.providers.github.contract import ContractRecorder
from tests.support.timeouts import EMULATOR_TIMEOUT_SECONDS

API_URL = "http://github.test"
TOKEN = "ghp_emulatortoken0123456789"


@pytest.fixture
def github_emulator() -> FastAPI:
    return create_app(seed=7)


@pytest.fixture
def github_state(github_emulator: FastAPI) -> EmulatorState:
    state: EmulatorState = github_emulator.state.emulator
    return state


@pytest.fixture
def contract_recorder(github_emulator: FastAPI) -> ContractRecorder:
    return ContractRecorder(httpx.ASGITransport(app=github_emulator))


@pytest.fixture
async def github_client(contract_recorder: ContractRecorder) -> AsyncIterator[GitHubClient]:
    """A client on the emulator; the test fails if any exchange breaks the contract."""
    async with GitHubClient(
        API_URL,
        TOKEN,
        transport=contract_recorder,
        timeout=EMULATOR_TIMEOUT_SECONDS,
        backoff_seconds=0.001,
        max_backoff_seconds=0.01,
    ) as client:
        yield client
    assert contract_recorder.violations() == []
