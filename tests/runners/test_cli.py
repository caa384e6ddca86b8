"""`setpoint runners list` shows managed and unmanaged runners with their state."""

from __future__ import annotations

import json

import anyio
import pytest

from tests.runners.conftest import DOKPLOY_KEY, GITHUB_TOKEN, Rig
from tests.support.cli import Invoke


async def test_runners_list_shows_managed_and_unmanaged_runners(
    rig: Rig, setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.github.add_runner("acme/shop", "build-box", labels=["setpoint-managed", "shop"])
    rig.declare(count=(1, 2))
    await rig.reconcile()
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", rig.dokploy_url)
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", DOKPLOY_KEY)
    monkeypatch.setenv("SETPOINT_GITHUB_API_URL", rig.github_url)
    monkeypatch.setenv("SETPOINT_GITHUB_TOKEN", GITHUB_TOKEN)

    # The command runs its own event loop: off this test's loop, as a fresh process would.
    listed = await anyio.to_thread.run_sync(setpoint, "runners", "list", "--output", "json")
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["setpoint-ci-1"]["managed"] is True
    assert rows["setpoint-ci-1"]["status"] == "online"
    assert rows["setpoint-ci-1"]["lane"] == "runner:ci/1"
    assert rows["setpoint-ci-1"]["process"] == "running"
    assert (
        rows["build-box"]["managed"] is False and "setpoint-managed" in rows["build-box"]["labels"]
    )

    table = await anyio.to_thread.run_sync(setpoint, "runners", "list")
    assert table.exit_code == 0, table.output
    assert "setpoint-ci-1" in table.stdout and "build-box" in table.stdout
    assert "never touched" in table.stdout
