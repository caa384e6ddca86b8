"""A wrong Dokploy URL or key is one line naming the URL, is not retried, and stores no plan
(issue 12, item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.dokploy.emulator import create_app
from reconciler.demo.loopback import serve
from tests.support.cli import Invoke

pytestmark = pytest.mark.e2e

KEY = "config-e2e-key"


@pytest.fixture
def base(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve(create_app(api_key=KEY, seed=1, build_seconds=0.05)) as url:
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", url)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", KEY)
        yield url


def _refused(setpoint: Invoke, *args: str) -> str:
    result = setpoint(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "retrying" not in result.output
    # No plan was stored: nothing was computed, so nothing was audited either.
    assert setpoint("audit", "list").stdout.strip() == "no audit records match"
    return lines[0]


def test_a_wrong_key_names_the_url(
    setpoint: Invoke, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "not-the-key")
    line = _refused(setpoint, "plan")
    assert f"Dokploy at {base}/api refused the API key (HTTP 401)" in line
    assert "SETPOINT_DOKPLOY_API_KEY" in line and "not-the-key" not in line
    assert f"Dokploy at {base}/api" in _refused(setpoint, "apply", "plan-whatever")


def test_a_wrong_path_names_the_url(
    setpoint: Invoke, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base + "/dokploy")
    line = _refused(setpoint, "plan")
    assert f"Dokploy's API is not at {base}/dokploy/api (HTTP 404" in line
    assert "SETPOINT_DOKPLOY_URL" in line


@pytest.mark.parametrize("url", ["127.0.0.1:3000", "localhost:3000", "ftp://dokploy.example"])
def test_a_url_without_a_usable_scheme_is_refused_before_any_request(
    setpoint: Invoke, base: str, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", url)
    line = _refused(setpoint, "plan")
    assert f"SETPOINT_DOKPLOY_URL: Value error, {url!r} is not a Dokploy address" in line


def test_a_plan_that_cannot_be_written_out_still_names_its_stored_id(
    setpoint: Invoke, base: str, tmp_path: Path
) -> None:
    result = setpoint("plan", "--out", str(tmp_path))  # a folder, not a file
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: plan ") and "is stored (`setpoint apply plan-" in line
    assert f"could not be written to {tmp_path}" in line


@pytest.mark.parametrize("command", [["serve"], ["run"]])
def test_a_service_is_never_started_on_a_made_up_database(
    setpoint: Invoke,
    base: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
) -> None:
    """Two replicas started without SETPOINT_DATABASE_URL would each keep their own SQLite
    file: `serve` and `run` refuse to start, in one line, and make no file (issue 23, 3)."""
    monkeypatch.delenv("SETPOINT_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    result = setpoint(*command)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SETPOINT_DATABASE_URL" in lines[0], result.stderr
    assert not (tmp_path / ".setpoint").exists()


def test_a_one_shot_command_says_where_it_keeps_state(
    setpoint: Invoke, base: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SETPOINT_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    first = setpoint("status")
    assert first.exit_code == 0, first.output
    assert "keeping state in .setpoint/setpoint.db" in first.stderr
    assert (tmp_path / ".setpoint" / "setpoint.db").exists()
