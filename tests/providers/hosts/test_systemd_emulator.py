"""The emulated systemd host behaves as a real one, inconvenient parts included, and the
env file format round-trips: the loopback host is only as good a test as it is faithful."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.github.emulator.runner_link import RunnerLink
from providers.github.emulator.state import EmulatorState
from providers.hosts import systemd_units as units
from providers.hosts.systemd_emulator import EmulatedSystemd

UNIT = "setpoint-runner@ci-1.service"


def host_with_runner(tmp_path: Path) -> tuple[EmulatedSystemd, EmulatorState]:
    state = EmulatorState(seed=1)
    runner = state.add_runner("acme/shop", "ci-1", status="offline", ephemeral=False)
    jit = base64.b64encode(json.dumps({".runner": {"id": runner.id}}).encode()).decode()
    systemd = EmulatedSystemd(tmp_path, RunnerLink(state))
    systemd.install_template()
    env = units.render_env({"ACTIONS_RUNNER_INPUT_JITCONFIG": jit})
    systemd.path(units.env_path("ci-1")).write_text(env)
    return systemd, state


def show(systemd: EmulatedSystemd, *targets: str) -> list[units.UnitStatus]:
    status, out, _ = systemd.systemctl(["show", "-p", ",".join(units.SHOW_PROPERTIES), *targets])
    assert status == 0
    return units.parse_show(out)


def test_a_stopped_unit_is_unloaded_and_invisible_to_patterns(tmp_path: Path) -> None:
    systemd, state = host_with_runner(tmp_path)
    assert systemd.systemctl(["start", UNIT])[0] == 0
    assert [s.unit for s in show(systemd, units.UNIT_PATTERN)] == [UNIT]
    assert next(iter(state.runners.values())).status == "online"

    assert systemd.systemctl(["stop", UNIT])[0] == 0
    assert show(systemd, units.UNIT_PATTERN) == []
    [named] = show(systemd, UNIT)  # named explicitly, systemd loads it to answer
    assert (named.load_state, named.active_state, named.main_pid) == ("loaded", "inactive", 0)
    assert next(iter(state.runners.values())).status == "offline"


def test_start_is_a_no_op_on_a_running_unit(tmp_path: Path) -> None:
    systemd, _ = host_with_runner(tmp_path)
    systemd.systemctl(["start", UNIT])
    [before] = show(systemd, UNIT)
    assert systemd.systemctl(["start", UNIT]) == (0, "", "")
    assert show(systemd, UNIT) == [before]


def test_start_without_the_env_file_fails_the_unit(tmp_path: Path) -> None:
    systemd, _ = host_with_runner(tmp_path)
    systemd.path(units.env_path("ci-1")).unlink()
    status, _, err = systemd.systemctl(["start", UNIT])
    assert status == 1 and f"Job for {UNIT} failed" in err
    [failed] = show(systemd, units.UNIT_PATTERN)
    assert failed.active_state == "failed"
    assert systemd.systemctl(["stop", UNIT])[0] == 0
    assert show(systemd, UNIT)[0].active_state == "failed", "stop does not clear a failure"
    assert systemd.systemctl(["reset-failed", UNIT])[0] == 0
    assert show(systemd, units.UNIT_PATTERN) == []


def test_the_template_itself_and_uninstalled_templates_do_not_start(tmp_path: Path) -> None:
    systemd, _ = host_with_runner(tmp_path)
    assert systemd.systemctl(["start", units.TEMPLATE_UNIT])[0] == 1
    systemd.path("/etc/systemd/system/setpoint-runner@.service").unlink()
    status, _, err = systemd.systemctl(["start", UNIT])
    assert status == 5 and "not found" in err
    assert show(systemd, UNIT)[0].load_state == "not-found"
    assert systemd.systemctl(["cat", units.TEMPLATE_UNIT])[0] == 1


def test_stop_kills_a_running_job_and_clean_refuses_a_running_unit(tmp_path: Path) -> None:
    systemd, state = host_with_runner(tmp_path)
    systemd.systemctl(["start", UNIT])
    systemd.start_job("ci-1")
    assert units.units_with_job(systemd.ps(["-e", "-o", "unit=,comm="])[1]) == {UNIT}
    assert systemd.systemctl(["clean", "--what=state", UNIT])[0] == 1
    assert systemd.state_dir("ci-1").is_dir()

    systemd.systemctl(["stop", UNIT])
    assert units.units_with_job(systemd.ps(["-e", "-o", "unit=,comm="])[1]) == set()
    assert next(iter(state.runners.values())).busy is False
    assert systemd.systemctl(["clean", "--what=state", UNIT])[0] == 0
    assert not systemd.state_dir("ci-1").exists()
    with pytest.raises(ValueError, match="not running"):
        systemd.start_job("ci-1")


values = st.text(
    st.characters(
        codec="utf-8",  # no lone surrogates: a file holds encodable text
        exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",  # line breaks
    ),
    max_size=40,
)


@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True), values))
def test_the_env_file_round_trips(env: dict[str, str]) -> None:
    assert units.parse_env(units.render_env(env)) == env


def test_an_env_value_cannot_span_lines() -> None:
    with pytest.raises(ValueError, match="span lines"):
        units.render_env({"A": "x\ny"})
