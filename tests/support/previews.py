"""Previews on both emulators in process: GitHub for the pull requests, Dokploy for the
services. The fixtures (`github_app`, `github`, `previews`) are a pytest plugin, registered
in tests/conftest.py; `store_notes` stores the `notes` product with its preview policy."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.github.client import GitHubClient
from providers.github.emulator import EmulatorState
from providers.github.emulator import create_app as create_github
from reconciler.core.outcomes import LaneOutcome
from reconciler.loop.passes import PassReport
from reconciler.runtime import Runtime
from tests.reconciler.conftest import store_fleet
from tests.support.notes_fleet import notes_fleet

PREVIEWS = """\
  preview:
    enabled: true
    label: preview
    templateLane: testing
    slug: pr-{{number}}
    domain: "{{slug}}.preview.notes.example.com"
    image: "ghcr.io/acme/notes:pr-{{number}}-{{sha7}}"
    maxActive: {max_active}
    gracePeriodMinutes: 0
    teardown: {teardown}
    allowForks: {allow_forks}
    ttlHours: {ttl}
    deploy: {deploy}
"""


def notes_yaml(
    *,
    max_active: int = 3,
    teardown: str = "auto",
    allow_forks: str = "[]",
    ttl: str = "null",
    deploy: str = "on-push",
) -> str:
    """The `notes` product with previews on pull requests labelled `preview`."""
    previews = PREVIEWS.format(
        max_active=max_active, teardown=teardown, allow_forks=allow_forks, ttl=ttl, deploy=deploy
    )
    return notes_fleet(
        health_path="/health",
        env={"LOG_LEVEL": "info"},
        secrets={"DATABASE_URL": "SETPOINT_SECRET_SHOP_DATABASE_URL"},
        health_check="{path: /health}",
        preview=previews,
    )


def store_notes(
    engine: Engine,
    tmp_path: Path,
    *,
    max_active: int = 3,
    teardown: str = "auto",
    allow_forks: str = "[]",
    ttl: str = "null",
    deploy: str = "on-push",
) -> None:
    text = notes_yaml(
        max_active=max_active, teardown=teardown, allow_forks=allow_forks, ttl=ttl, deploy=deploy
    )
    (tmp_path / "notes.yaml").write_text(text)
    store_fleet(engine, tmp_path)


def outcomes(report: PassReport) -> dict[str, LaneOutcome]:
    """What the pass did to each preview lane of `notes`."""
    return {r.lane: r.outcome for r in report.lanes if r.lane.startswith("preview:notes/")}


@pytest.fixture
def github_app() -> FastAPI:
    return create_github(seed=3)


@pytest.fixture
def github(github_app: FastAPI) -> EmulatorState:
    state: EmulatorState = github_app.state.emulator
    state.add_repo("acme", "shop")  # the example fleet's shop has previews too
    return state


@pytest.fixture
async def previews(
    runtime: Runtime, github_app: FastAPI, github: EmulatorState
) -> AsyncIterator[Runtime]:
    """The test's runtime with a GitHub client on the emulator, acting as the scheduler."""
    async with GitHubClient(
        "http://github.test",
        "ghp_previewtoken0123456789",
        transport=httpx.ASGITransport(app=github_app),
        timeout=2.0,
        backoff_seconds=0.001,
        max_backoff_seconds=0.01,
    ) as client:
        yield dataclasses.replace(
            runtime, providers={**runtime.providers, "github": client}, actor="scheduler"
        )
