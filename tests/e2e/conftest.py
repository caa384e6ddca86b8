"""The CLI's end-to-end set-up: a Dokploy emulator on loopback, and a planned fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.dokploy.emulator import create_app
from reconciler.demo.loopback import serve
from tests.support.cli import Invoke
from tests.support.notes_fleet import NOTES_FLEET, NOTES_SECRET


@pytest.fixture
def dokploy_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Dokploy emulator served on loopback, and the settings that point the CLI at it."""
    with serve(create_app(api_key="cli-e2e-key", seed=3, build_seconds=0.05)) as base:
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "cli-e2e-key")
        monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
        monkeypatch.setenv("SETPOINT_SECRET_NOTES_SIGNING_KEY", NOTES_SECRET)
        yield base


@pytest.fixture
def planned(setpoint: Invoke, dokploy_url: str, tmp_path: Path) -> Path:
    """The notes fleet in the database and a plan written with `plan --out`."""
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(NOTES_FLEET)
    assert setpoint("desired", "apply", str(fleet)).exit_code == 0
    out = tmp_path / "p.json"
    assert setpoint("plan", "--out", str(out)).exit_code == 0
    return out
