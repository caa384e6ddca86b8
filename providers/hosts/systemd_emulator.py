"""An emulated systemd host: the subset of `systemctl` and `ps` the SSH and systemd host
adapter sends, behaving as a real host does, inconvenient parts included.

- `systemctl start` of an instance whose template is not installed fails ("Unit ... not
  found.", exit 5); of a running unit does nothing; with no env file fails the unit (as
  `EnvironmentFile=` without `-` does). A runner that GitHub refuses exits: the start
  itself succeeds (Type=simple) and the unit turns `failed` just after.
- `systemctl stop` kills a job the runner is running; a stopped unit that is neither
  enabled nor failed is unloaded (garbage-collected) and drops out of `show` patterns, as
  on a real host; a failed unit stays loaded until `reset-failed`.
- `systemctl clean --what=state` refuses a running unit; `reset-failed` of a unit that is
  not loaded fails.
- `ps -e -o unit=,comm=` lists each running unit's processes: the runner's `run.sh`, its
  `Runner.Listener`, and `Runner.Worker` while a job runs.

The host's files live under `root` (the SFTP server's chroot). Runner processes are linked
to the GitHub emulator (`RunnerLink`): a unit that starts with a JIT config (read from the
env file it was given) brings its runner online; one that stops takes it offline. Tests
start and end jobs with `start_job` and `end_job`.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from providers.github.emulator.runner_link import RunnerLink
from providers.hosts import systemd_units as units

TEMPLATE_PATH = f"/etc/systemd/system/{units.TEMPLATE_UNIT}"
STATE_ROOT = "/var/lib/setpoint-runner"
EXAMPLE_TEMPLATE = f"""[Unit]
Description=Setpoint-managed GitHub Actions runner %i
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=runner
EnvironmentFile={units.RUNNER_DIR}/%i{units.ENV_SUFFIX}
StateDirectory=setpoint-runner/%i
WorkingDirectory={STATE_ROOT}/%i
# Each runner gets its own copy: runners sharing one directory share its _work folder.
ExecStartPre=/bin/cp -a --no-clobber /opt/actions-runner/. {STATE_ROOT}/%i/
ExecStart={STATE_ROOT}/%i/run.sh
KillMode=mixed
TimeoutStopSec=30
Restart=no
"""

Result = tuple[int, str, str]  # exit status, stdout, stderr
_NOT_FOUND = 5  # systemctl's exit status for a unit that is not loaded or has no file


@dataclass
class EmuUnit:
    instance: str
    active_state: str = "inactive"
    sub_state: str = "dead"
    main_pid: int = 0
    enabled: bool = False
    job: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return units.unit_of(self.instance)

    @property
    def running(self) -> bool:
        return self.active_state == "active"


class EmulatedSystemd:
    def __init__(self, root: Path, link: RunnerLink | None = None) -> None:
        self.root = root
        self.link = link
        self.loaded: dict[str, EmuUnit] = {}
        self._next_pid = 4000

    # -- the host's files ----------------------------------------------------------------

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def install_template(self, text: str = EXAMPLE_TEMPLATE) -> None:
        """The operator's one-time install: the template unit and the runner directory."""
        target = self.path(TEMPLATE_PATH)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        runner_dir = self.path(units.RUNNER_DIR)
        runner_dir.mkdir(parents=True, exist_ok=True)
        runner_dir.chmod(0o700)

    def template_installed(self) -> bool:
        return self.path(TEMPLATE_PATH).is_file()

    def state_dir(self, instance: str) -> Path:
        return self.path(f"{STATE_ROOT}/{instance}")

    # -- test controls -------------------------------------------------------------------

    def unit(self, instance: str) -> EmuUnit | None:
        return self.loaded.get(instance)

    def start_job(self, instance: str, *, github_busy: bool = True) -> None:
        """A job lands on the runner. `github_busy=False` leaves GitHub's busy flag false,
        as it can read for minutes after a job starts."""
        unit = self.loaded.get(instance)
        if unit is None or not unit.running:
            raise ValueError(f"{instance} is not running: no job can start on it")
        unit.job = True
        if github_busy:
            self._set_busy(unit, True)

    def end_job(self, instance: str) -> None:
        """The job finishes. An ephemeral runner then exits and GitHub forgets it."""
        unit = self.loaded.get(instance)
        if unit is None or not unit.job:
            return
        unit.job = False
        self._set_busy(unit, False)
        if unit.env.get("SETPOINT_RUNNER_EPHEMERAL") == "1":
            runner_id = self._runner_id(unit)
            self._deactivate(unit, notify=False)
            if self.link is not None and runner_id is not None:
                self.link.state.runners.pop(runner_id, None)

    # -- commands ------------------------------------------------------------------------

    def systemctl(self, args: list[str]) -> Result:
        verb, rest, problem = _verb_and_args(args)
        if problem:
            return 1, "", problem
        handler = self._verbs().get(verb)
        if handler is None:
            return 1, "", f"Unknown command verb '{verb}'.\n"
        return handler(rest)

    def ps(self, args: list[str]) -> Result:
        if args != ["-e", "-o", "unit=,comm="]:
            # The real ps has many more options; an emulator that guessed would hide a
            # change in what the adapter sends.
            return 1, "", f"error: emulated ps supports only `ps -e -o unit=,comm=`, not {args}\n"
        lines = ["init.scope       systemd", "ssh.service      sshd"]
        for unit in sorted(self.loaded.values(), key=lambda u: u.instance):
            if unit.running:
                lines += [f"{unit.unit} run.sh", f"{unit.unit} Runner.Listener"]
                if unit.job:
                    lines.append(f"{unit.unit} {units.JOB_PROCESS}")
        return 0, "\n".join(lines) + "\n", ""

    def _verbs(self) -> dict[str, Callable[[list[str]], Result]]:
        return {
            "start": self._each(self._start),
            "stop": self._each(self._stop),
            "enable": self._each(self._enable),
            "disable": self._each(self._disable),
            "reset-failed": self._each(self._reset_failed),
            "clean": self._clean,
            "cat": self._cat,
            "show": self._show,
        }

    def _each(self, one: Callable[[str], Result]) -> Callable[[list[str]], Result]:
        def run(names: list[str]) -> Result:
            if not names:
                return 1, "", "Too few arguments.\n"
            for name in names:
                status, out, err = one(name)
                if status != 0:
                    return status, out, err
            return 0, "", ""

        return run

    def _instance(self, unit: str) -> str | None:
        if not unit.endswith(units.UNIT_SUFFIX):
            unit += units.UNIT_SUFFIX
        return units.name_of_unit(unit)

    def _start(self, unit: str) -> Result:
        if unit.removesuffix(units.UNIT_SUFFIX) + units.UNIT_SUFFIX == units.TEMPLATE_UNIT:
            return (
                1,
                "",
                f"Failed to start {unit}: Unit name {unit} is missing the instance name.\n",
            )
        instance = self._instance(unit)
        if instance is None or not self.template_installed():
            return _NOT_FOUND, "", f"Failed to start {unit}: Unit {unit} not found.\n"
        current = self.loaded.setdefault(instance, EmuUnit(instance))
        if current.running:
            return 0, "", ""
        env_file = self.path(units.env_path(instance))
        if not env_file.is_file():
            current.active_state, current.sub_state = "failed", "failed"
            return 1, "", _job_failed(unit)
        current.env = units.parse_env(env_file.read_text(encoding="utf-8"))
        self.state_dir(instance).mkdir(parents=True, exist_ok=True)
        self._next_pid += 3
        current.active_state, current.sub_state = "active", "running"
        current.main_pid = self._next_pid
        if not self._runner_came_online(current):
            # The runner exits on a configuration GitHub refuses; Type=simple has already
            # reported the start as done.
            current.active_state, current.sub_state, current.main_pid = "failed", "failed", 0
        return 0, "", ""

    def _stop(self, unit: str) -> Result:
        instance = self._instance(unit)
        if instance is None or not self.template_installed():
            return _NOT_FOUND, "", f"Failed to stop {unit}: Unit {unit} not loaded.\n"
        current = self.loaded.get(instance)
        if current is not None and current.running:
            self._deactivate(current, notify=True)
        return 0, "", ""

    def _enable(self, unit: str) -> Result:
        return self._set_enabled(unit, True)

    def _disable(self, unit: str) -> Result:
        return self._set_enabled(unit, False)

    def _set_enabled(self, unit: str, enabled: bool) -> Result:
        instance = self._instance(unit)
        if instance is None or not self.template_installed():
            verb = "enable" if enabled else "disable"
            return 1, "", f"Failed to {verb} unit: Unit file {unit} does not exist.\n"
        if enabled:
            self.loaded.setdefault(instance, EmuUnit(instance)).enabled = True
        elif instance in self.loaded:
            self.loaded[instance].enabled = False
            self._collect(self.loaded[instance])
        return 0, "", ""

    def _reset_failed(self, unit: str) -> Result:
        instance = self._instance(unit)
        current = self.loaded.get(instance) if instance else None
        if current is None:
            return 1, "", f"Failed to reset failed state of unit {unit}: Unit {unit} not loaded.\n"
        if current.active_state == "failed":
            current.active_state, current.sub_state = "inactive", "dead"
            self._collect(current)
        return 0, "", ""

    def _clean(self, args: list[str]) -> Result:
        names = [a for a in args if not a.startswith("--what=")]
        kinds = [a.removeprefix("--what=") for a in args if a.startswith("--what=")]
        if kinds != ["state"] or len(names) != 1:
            return 1, "", "emulated systemctl clean supports only --what=state and one unit\n"
        unit = names[0]
        instance = self._instance(unit)
        if instance is None or not self.template_installed():
            return 1, "", f"Failed to clean unit {unit}: Unit {unit} not found.\n"
        current = self.loaded.get(instance)
        if current is not None and current.active_state not in ("inactive", "failed"):
            return 1, "", f"Failed to clean unit {unit}: Unit is not inactive or failed.\n"
        shutil.rmtree(self.state_dir(instance), ignore_errors=True)
        return 0, "", ""

    def _cat(self, args: list[str]) -> Result:
        if args != [units.TEMPLATE_UNIT] and not all(self._instance(a) for a in args):
            return 1, "", f"No files found for {' '.join(args)}.\n"
        if not args or not self.template_installed():
            return 1, "", f"No files found for {' '.join(args) or 'nothing'}.\n"
        text = self.path(TEMPLATE_PATH).read_text(encoding="utf-8")
        return 0, f"# {TEMPLATE_PATH}\n{text}", ""

    def _show(self, args: list[str]) -> Result:
        properties, targets, problem = _show_args(args)
        if problem:
            return 1, "", problem
        blocks = [self._show_block(unit, properties) for unit in self._show_targets(targets)]
        return 0, "\n\n".join(blocks) + ("\n" if blocks else ""), ""

    def _show_targets(self, targets: list[str]) -> list[str]:
        found: list[str] = []
        for target in targets:
            if any(c in target for c in "*?["):
                # A pattern matches loaded units only; an unloaded unit is invisible to it.
                found += sorted(
                    u.unit for u in self.loaded.values() if fnmatch.fnmatchcase(u.unit, target)
                )
            else:
                found.append(target)
        return found

    def _show_block(self, unit: str, properties: list[str]) -> str:
        instance = self._instance(unit)
        current = self.loaded.get(instance) if instance else None
        if current is None:
            current = EmuUnit(instance or "")
        load = "loaded" if instance and self.template_installed() else "not-found"
        values = {
            "Id": unit,
            "LoadState": load,
            "ActiveState": current.active_state,
            "SubState": current.sub_state,
            "MainPID": str(current.main_pid),
            "UnitFileState": "enabled" if current.enabled else "disabled",
        }
        shown = properties or list(values)
        return "\n".join(f"{p}={values[p]}" for p in shown if p in values)

    # -- what a process does -------------------------------------------------------------

    def _runner_came_online(self, unit: EmuUnit) -> bool:
        if self.link is None:
            return True
        jit = unit.env.get("ACTIONS_RUNNER_INPUT_JITCONFIG")
        if jit is not None:
            return self.link.started(jit)
        token = unit.env.get("ACTIONS_RUNNER_INPUT_TOKEN", "")
        return self.link.started_with_token(
            _scope_of(unit.env.get("ACTIONS_RUNNER_INPUT_URL", "")),
            unit.env.get("ACTIONS_RUNNER_INPUT_NAME", unit.instance),
            token,
            [x for x in unit.env.get("ACTIONS_RUNNER_INPUT_LABELS", "").split(",") if x],
            ephemeral=unit.env.get("SETPOINT_RUNNER_EPHEMERAL") == "1",
        )

    def _deactivate(self, unit: EmuUnit, *, notify: bool) -> None:
        unit.job = False  # stopping a runner kills the job it was running
        unit.active_state, unit.sub_state, unit.main_pid = "inactive", "dead", 0
        if notify and self.link is not None:
            jit = unit.env.get("ACTIONS_RUNNER_INPUT_JITCONFIG")
            if jit is not None:
                self.link.stopped(jit)
            else:
                url = unit.env.get("ACTIONS_RUNNER_INPUT_URL", "")
                self.link.stopped_by_name(_scope_of(url), unit.instance)
        self._collect(unit)

    def _collect(self, unit: EmuUnit) -> None:
        """systemd unloads a unit nothing holds: inactive, not failed, not enabled."""
        if unit.active_state == "inactive" and not unit.enabled:
            self.loaded.pop(unit.instance, None)

    def _runner_id(self, unit: EmuUnit) -> int | None:
        if self.link is None:
            return None
        jit = unit.env.get("ACTIONS_RUNNER_INPUT_JITCONFIG")
        if jit is not None:
            return self.link.runner_id_of(jit)
        scope = _scope_of(unit.env.get("ACTIONS_RUNNER_INPUT_URL", ""))
        named = [r.id for r in self.link.state.runners_in(scope) if r.name == unit.instance]
        return named[0] if named else None

    def _set_busy(self, unit: EmuUnit, busy: bool) -> None:
        runner_id = self._runner_id(unit)
        if self.link is not None and runner_id is not None and runner_id in self.link.state.runners:
            self.link.state.set_runner(runner_id, busy=busy)


def _job_failed(unit: str) -> str:
    return (
        f"Job for {unit} failed because of unavailable resources or another system error.\n"
        f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.\n'
    )


def _scope_of(github_url: str) -> str:
    """`https://github.com/OWNER/REPO` -> `OWNER/REPO`; `https://github.com/ORG` -> `ORG`."""
    path = github_url.split("://", 1)[-1].split("/", 1)[-1] if "://" in github_url else ""
    return path.strip("/")


def _verb_and_args(args: list[str]) -> tuple[str, list[str], str | None]:
    """systemctl's first non-option word is the verb; `--no-pager` and `--quiet` are
    accepted anywhere and change nothing here."""
    rest = [a for a in args if a not in ("--no-pager", "--quiet", "-q")]
    for index, arg in enumerate(rest):
        if not arg.startswith("-"):
            return arg, rest[:index] + rest[index + 1 :], None
    return "", [], "systemctl: no verb given (emulated systemctl)\n"


def _show_args(args: list[str]) -> tuple[list[str], list[str], str | None]:
    properties: list[str] = []
    targets: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--":
            targets += list(it)
        elif arg == "-p":
            properties += next(it, "").split(",")
        elif arg.startswith("--property="):
            properties += arg.removeprefix("--property=").split(",")
        elif arg.startswith("-"):
            return [], [], f"systemctl: unrecognized option '{arg}'\n"
        else:
            targets.append(arg)
    return [p for p in properties if p], targets, None
