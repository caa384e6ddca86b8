"""Benchmark: how long `setpoint` takes to start, for one or more installs side by side.

Runs `setpoint --help`, `setpoint validate EXAMPLE` and `setpoint plan --help` as
subprocesses through each install's own entry point, and times `import reconciler.cli.app`
in its interpreter (`-X importtime`). Installs are run in turn within each round, so a
busy machine slows them alike. Prints the median of each as a markdown table.

Two bytecode modes, since they differ several-fold:
  env     as the environment says (with PYTHONDONTWRITEBYTECODE=1, every run compiles
          every module from source)
  cached  .pyc files kept in a private PYTHONPYCACHEPREFIX, warmed before timing, as an
          installed CLI runs; nothing is written into the installs' own directories

    uv run python bench/cli_start.py
    uv run python bench/cli_start.py --setpoint before=/path/to/other/.venv/bin/setpoint \\
        --setpoint after=.venv/bin/setpoint --runs 15
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLE = ROOT / "examples" / "fleet" / "shop.yaml"
MODES = ("env", "cached")


@dataclass(frozen=True)
class Install:
    label: str
    setpoint: Path

    @property
    def python(self) -> Path:
        # The entry point's own interpreter: the venv's python beside it.
        return self.setpoint.parent / "python"


@dataclass(frozen=True)
class Context:
    """Where a timed process runs: its environment, and an empty working directory, so
    `python -c` imports each install's own code, never a checkout's from the directory."""

    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Probe:
    """One thing to time: its row label and how to time it once for an install."""

    label: str
    once: Callable[[Install, Context], float]


def parse_install(text: str) -> Install:
    label, sep, path = text.partition("=")
    if not sep:
        path = text
        label = Path(text).resolve().parents[2].name  # <checkout>/.venv/bin/setpoint
    setpoint = Path(path).absolute()
    if not setpoint.is_file():
        raise SystemExit(f"no setpoint entry point at {setpoint}")
    return Install(label, setpoint)


def wall_time(argv: list[str], context: Context) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 -- our own installs
        argv, env=context.env, cwd=context.cwd, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def command_probe(label: str, *args: str) -> Probe:
    return Probe(label, lambda install, ctx: wall_time([str(install.setpoint), *args], ctx))


def import_seconds(install: Install, context: Context) -> float:
    """Cumulative `-X importtime` of reconciler.cli.app: the import alone, no interpreter start."""
    completed = subprocess.run(  # noqa: S603 -- our own installs
        [str(install.python), "-X", "importtime", "-c", "import reconciler.cli.app"],
        env=context.env,
        cwd=context.cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    for line in reversed(completed.stderr.splitlines()):
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if name == "reconciler.cli.app":
            return int(cumulative) / 1e6
    raise RuntimeError(f"{install.label}: no import time for reconciler.cli.app")


def context_for(mode: str, scratch: Path) -> Context:
    env = dict(os.environ)
    if mode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    (scratch / "cwd").mkdir(exist_ok=True)
    return Context(env, scratch / "cwd")


def measure(
    installs: list[Install], probes: list[Probe], modes: list[str], runs: int
) -> dict[tuple[str, str, str], float]:
    """Median seconds per (mode, probe, install)."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="setpoint-bench-") as scratch:
        contexts = {mode: context_for(mode, Path(scratch)) for mode in modes}
        for mode in modes:  # one untimed round: warms the .pyc cache and the file cache
            for probe in probes:
                for install in installs:
                    probe.once(install, contexts[mode])
        for _ in range(runs):
            for mode in modes:
                for probe in probes:
                    for install in installs:
                        key = (mode, probe.label, install.label)
                        samples.setdefault(key, []).append(probe.once(install, contexts[mode]))
    return {key: statistics.median(values) for key, values in samples.items()}


def table(
    installs: list[Install],
    probes: list[Probe],
    modes: list[str],
    medians: dict[tuple[str, str, str], float],
) -> str:
    header = ["what", "bytecode", *(i.label for i in installs)]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(installs)]
    for mode in modes:
        for probe in probes:
            cells = [f"{medians[(mode, probe.label, i.label)]:.3f} s" for i in installs]
            lines.append(f"| {probe.label} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--setpoint",
        action="append",
        metavar="[LABEL=]PATH",
        help="an install's setpoint entry point (repeatable; default: this checkout's .venv)",
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (median)")
    parser.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE, help="file to validate")
    parser.add_argument("--bytecode", choices=[*MODES, "both"], default="both")
    args = parser.parse_args()
    installs = [parse_install(s) for s in args.setpoint or [str(ROOT / ".venv/bin/setpoint")]]
    modes = list(MODES) if args.bytecode == "both" else [args.bytecode]
    probes = [
        command_probe("`setpoint --help`", "--help"),
        command_probe(f"`setpoint validate {args.example.name}`", "validate", str(args.example)),
        command_probe("`setpoint plan --help`", "plan", "--help"),
        Probe("import `reconciler.cli.app` (importtime)", import_seconds),
    ]
    medians = measure(installs, probes, modes, args.runs)
    print(
        f"median of {args.runs} runs; Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; {sys.platform}\n"
    )
    print(table(installs, probes, modes, medians))
    for install in installs:
        print(f"\n{install.label}: {install.setpoint}")


if __name__ == "__main__":
    main()
