"""What the SSH and systemd host adapter says to a host and reads back, as pure functions:
unit and file names, the runner's environment file, `systemctl show` and `ps` output.

Shared by the adapter (`ssh_systemd.py`) and the loopback test host (`ssh_emulator.py`), so
both speak the same names; nothing here opens a connection.

A runner named `ci-amd64-1` lives in the unit `setpoint-runner@ci-amd64-1.service`, an
instance of the template unit the operator installs once, and reads its environment from
`/etc/setpoint/runners/ci-amd64-1.env` (mode 0600). The file is the only place the
registration secret goes on the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TEMPLATE_UNIT = "setpoint-runner@.service"
UNIT_PREFIX = "setpoint-runner@"
UNIT_SUFFIX = ".service"
UNIT_PATTERN = f"{UNIT_PREFIX}*{UNIT_SUFFIX}"
RUNNER_DIR = "/etc/setpoint/runners"
ENV_SUFFIX = ".env"
ENV_FILE_MODE = 0o600
# The job process of the actions runner; `Runner.Listener` waits for jobs, `Runner.Worker`
# runs one. Its presence is the host's own word that a job runs, whatever GitHub's busy
# flag says at the moment.
JOB_PROCESS = "Runner.Worker"

# A runner name becomes a systemd instance name and a file name. systemd would escape other
# characters (`systemd-escape`) and the file name would then differ from the instance; only
# names that need no escaping are accepted, so the two always agree. GitHub caps runner
# names at 64 characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# `systemctl show` properties the adapter reads; real systemd prints them in its own order.
SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "MainPID", "UnitFileState")


class InvalidRunnerName(ValueError):
    """A runner name that cannot be a systemd instance name as it is."""


def checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        # The name is not a secret; repr() shows stray whitespace or control characters.
        raise InvalidRunnerName(
            f"runner name {name!r} is not usable as a systemd instance: use letters, digits, "
            "'-', '_' and '.', at most 64 characters"
        )
    return name


def unit_of(name: str) -> str:
    return f"{UNIT_PREFIX}{checked_name(name)}{UNIT_SUFFIX}"


def name_of_unit(unit: str) -> str | None:
    """The runner a unit runs, or None for a unit that is not one of ours."""
    if not (unit.startswith(UNIT_PREFIX) and unit.endswith(UNIT_SUFFIX)):
        return None
    name = unit[len(UNIT_PREFIX) : -len(UNIT_SUFFIX)]
    return name if _NAME.fullmatch(name) else None


def env_path(name: str) -> str:
    return f"{RUNNER_DIR}/{checked_name(name)}{ENV_SUFFIX}"


def name_of_env_file(filename: str) -> str | None:
    if not filename.endswith(ENV_SUFFIX):
        return None
    name = filename[: -len(ENV_SUFFIX)]
    return name if _NAME.fullmatch(name) else None


# -- the environment file -----------------------------------------------------------------


def _quoted(value: str) -> str:
    # systemd's EnvironmentFile= reads double-quoted values with backslash escapes; a newline
    # would end the assignment, so none is allowed (no value we write has one).
    if "\n" in value or "\r" in value:
        raise ValueError("an environment value cannot span lines")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_env(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={_quoted(value)}\n" for key, value in values.items())


def parse_env(text: str) -> dict[str, str]:
    """The subset of systemd's EnvironmentFile= syntax `render_env` writes, plus comments
    and unquoted values (an operator may edit the file by hand)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, raw = line.split("=", 1)
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        values[key.strip()] = raw
    return values


# -- what systemctl and ps print ----------------------------------------------------------


@dataclass(frozen=True)
class UnitStatus:
    unit: str
    load_state: str
    active_state: str
    sub_state: str
    main_pid: int
    unit_file_state: str = ""


def parse_show(text: str) -> list[UnitStatus]:
    """`systemctl show -p ...` for one or more units: blocks of KEY=VALUE lines, separated
    by a blank line. Blocks without an `Id` are skipped."""
    statuses = []
    for block in re.split(r"\n\s*\n", text):
        props = dict(
            line.split("=", 1) for line in block.splitlines() if "=" in line and line.strip()
        )
        if not props.get("Id"):
            continue
        statuses.append(
            UnitStatus(
                unit=props["Id"],
                load_state=props.get("LoadState", ""),
                active_state=props.get("ActiveState", ""),
                sub_state=props.get("SubState", ""),
                main_pid=_int(props.get("MainPID", "0")),
                unit_file_state=props.get("UnitFileState", ""),
            )
        )
    return statuses


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def units_with_job(ps_output: str) -> set[str]:
    """Units with a job process, from `ps -e -o unit=,comm=` (the unit a process belongs to,
    then its command name; processes outside any unit show `-`)."""
    found = set()
    for line in ps_output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1] == JOB_PROCESS:
            found.add(parts[0])
    return found


def runner_env(
    *,
    name: str,
    lane: str,
    pool: str,
    labels: Iterable[str],
    github_url: str,
    registration: str,
    jit: bool,
    ephemeral: bool,
) -> dict[str, str]:
    """The runner's environment. The actions runner reads any of its command-line arguments
    from `ACTIONS_RUNNER_INPUT_<NAME>`, so the secret reaches it without a command line."""
    values = {
        "SETPOINT_RUNNER_NAME": name,
        "SETPOINT_RUNNER_LANE": lane,
        "SETPOINT_RUNNER_POOL": pool,
        "SETPOINT_RUNNER_LABELS": ",".join(labels),
        "SETPOINT_RUNNER_EPHEMERAL": "1" if ephemeral else "0",
    }
    if jit:
        values["ACTIONS_RUNNER_INPUT_JITCONFIG"] = registration
    else:
        values |= {
            "ACTIONS_RUNNER_INPUT_URL": github_url,
            "ACTIONS_RUNNER_INPUT_TOKEN": registration,
            "ACTIONS_RUNNER_INPUT_NAME": name,
            "ACTIONS_RUNNER_INPUT_LABELS": ",".join(labels),
        }
    return values
