"""Run both reliability suites at full size and print their tables (bench/reliability.py).

Uses the same code as the tests (matrix.py, crash.py); prints markdown on stdout and one
progress line per case on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa

from tests.databases import postgres_base_url
from tests.reliability import crash, matrix
from tests.reliability.stores import PostgresStore, SqliteStore, Store, empty_database

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Run:
    backends: list[str]
    cases: dict[str, list[matrix.CaseResult]] = field(default_factory=dict)
    kills: dict[str, list[crash.CrashResult]] = field(default_factory=dict)
    procedures: dict[str, int] = field(default_factory=dict)  # name -> calls in a clean run
    seconds: dict[str, float] = field(default_factory=dict)  # "matrix sqlite" -> wall time
    machine: list[str] = field(default_factory=list)  # where and when it ran, for the page
    unowned: dict[str, matrix.CaseResult] = field(default_factory=dict)  # see matrix.py


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _store(backend: str, directory: Path) -> Store:
    if backend == "sqlite":
        return SqliteStore(directory)
    base = postgres_base_url()
    assert base is not None
    return PostgresStore(base)


def run_matrix(run: Run, backend: str, directory: Path, *, full: bool) -> None:
    store = _store(backend, directory)
    started = time.monotonic()
    try:
        baseline = anyio.run(matrix.make_baseline, store)
        run.procedures = {p.name: p.calls for p in baseline.procedures}
        offset = run.backends.index(backend)
        cases = (
            matrix.full_matrix(baseline.procedures)
            if full
            else matrix.ci_sample(baseline.procedures, offset)
        )
        results = run.cases.setdefault(backend, [])
        for procedure, fault in cases:
            result = anyio.run(matrix.run_case, baseline, procedure, fault)
            results.append(result)
            verdict = "ok" if result.ok else "FAIL"
            _say(f"matrix {backend} {procedure.name} x {fault}: {verdict} ({result.seconds:.1f}s)")
        with empty_database(backend, directory, postgres_base_url()) as url:
            run.unowned[backend] = anyio.run(matrix.run_unowned_listing_case, url)
    finally:
        store.close()
    run.seconds[f"matrix {backend}"] = time.monotonic() - started


def run_crash(run: Run, backend: str, directory: Path, *, full: bool) -> None:
    started = time.monotonic()
    chosen = crash.points(crash.plan_size(), full=full, offset=run.backends.index(backend))
    results = run.kills.setdefault(backend, [])
    for point in chosen:
        with empty_database(backend, directory, postgres_base_url()) as url:
            result = crash.run_crash_point(url, point, directory)
        results.append(result)
        verdict = "ok" if result.ok else "FAIL"
        _say(f"crash {backend} {point.label}: {verdict} ({result.seconds:.1f}s to converge)")
    run.seconds[f"crash {backend}"] = time.monotonic() - started


# -- rendering ------------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 -- fixed argv
            ["git", *args],  # noqa: S607 -- git from PATH, as a developer runs it
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres_version() -> str | None:
    base = postgres_base_url()
    if base is None:
        return None
    engine = sa.create_engine(base)
    try:
        with engine.connect() as connection:
            version = str(connection.execute(sa.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()
    return version.split()[0]


def machine(run: Run) -> list[str]:
    postgres = _postgres_version() if "postgresql" in run.backends else None
    lines = [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_git('rev-parse', '--short', 'HEAD')}",
        f"- machine: {os.cpu_count()} cores, {_memory()} RAM, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}",
        f"- databases: {', '.join(NAMES[b] for b in run.backends)}"
        + (f" (PostgreSQL {postgres})" if postgres else ""),
    ]
    return lines


def _cell(results: Sequence[matrix.CaseResult | None]) -> str:
    shown = []
    for result in results:
        if result is None:
            shown.append("n/a")
        elif result.ok:
            shown.append(f"✓ {result.rounds}")
        elif matrix.known_bug(result):
            shown.append("✗ bug")
        else:
            shown.append("✗")
    return " · ".join(shown)


def matrix_table(run: Run) -> list[str]:
    found = {
        (backend, r.procedure, r.fault): r
        for backend, results in run.cases.items()
        for r in results
    }
    faults = list(matrix.Fault)
    lines = [
        "| procedure | calls | " + " | ".join(f.value for f in faults) + " |",
        "|---|---:|" + "---|" * len(faults),
    ]
    for name, calls in sorted(run.procedures.items()):
        cells = [_cell([found.get((b, name, f)) for b in run.backends]) for f in faults]
        lines.append(f"| `{name}` | {calls} | " + " | ".join(cells) + " |")
    return lines


def matrix_outcomes(run: Run) -> list[str]:
    """How the round under fault ended, counted per fault (first backend)."""
    results = run.cases.get(run.backends[0], [])
    faults = list(matrix.Fault)
    outcomes = sorted({r.during for r in results})
    lines = [
        "| round under fault | " + " | ".join(f.value for f in faults) + " |",
        "|---|" + "---:|" * len(faults),
    ]
    for outcome in outcomes:
        counts = [sum(1 for r in results if r.during == outcome and r.fault is f) for f in faults]
        lines.append(f"| {outcome} | " + " | ".join(str(c) for c in counts) + " |")
    return lines


def crash_table(results: Iterable[crash.CrashResult]) -> list[str]:
    lines = [
        "| apply | killed when | k | durable at the kill (intents / results) "
        "| recovered | applies | reclaimed | seconds | duplicates |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        mode = "one at a time" if r.concurrency == crash.SEQUENTIAL else "parallel"
        when = "intent k committed" if r.moment is crash.Moment.announced else "write k unanswered"
        recovered = "yes" if r.ok else "**no**"
        lines.append(
            f"| {mode} | {when} | {r.boundary} | {r.intents} / {r.results} | {recovered} "
            f"| {r.rounds} | {r.reclaimed} | {r.seconds:.2f} | {r.duplicates} |"
        )
    return lines


def problems(run: Run) -> list[str]:
    lines = []
    for backend, results in run.cases.items():
        for r in results:
            if not r.ok:
                known = " (known bug)" if matrix.known_bug(r) else ""
                lines.append(f"- matrix, {NAMES[backend]}, `{r.procedure}` x {r.fault}{known}:")
                lines.extend(f"  - {p}" for p in r.problems)
    for backend, unowned in run.unowned.items():
        if not unowned.ok:
            lines.append(f"- {NAMES[backend]}, empty `project.all` before anything is owned:")
            lines.extend(f"  - {p}" for p in unowned.problems)
    for backend, points in run.kills.items():
        for c in points:
            if not c.ok:
                lines.append(f"- crash, {NAMES[backend]}, {c.moment.value} {c.boundary}:")
                lines.extend(f"  - {p}" for p in c.problems)
    return lines or ["- none"]


def render(run: Run) -> str:
    wall = ", ".join(f"{what} {seconds / 60:.1f} min" for what, seconds in run.seconds.items())
    out = ["## Machine", "", *run.machine, f"- wall time: {wall}", "", "## Fault matrix", ""]
    out.append(
        "Applies needed after the fault cleared until a plan was empty "
        f"({' · '.join(NAMES[b] for b in run.backends)}); ✓ passed every check, "
        "✗ did not, `bug`: a known engine bug (below)."
    )
    out += ["", *matrix_table(run), "", *matrix_outcomes(run), ""]
    if run.unowned:
        cells = _cell([run.unowned.get(b) for b in run.backends])
        out += [
            f"Empty `project.all` before Setpoint owns anything (a project exists): {cells}",
            "",
        ]
    out += ["## Crash points", ""]
    for backend, results in run.kills.items():
        if results:
            out += [
                f"### {NAMES[backend]}",
                "",
                f"The killed plan has {results[0].actions} actions.",
                "",
            ]
            out += [*crash_table(results), ""]
            seconds = [r.seconds for r in results]
            out += [
                f"Recovery: median {sorted(seconds)[len(seconds) // 2]:.2f} s, "
                f"worst {max(seconds):.2f} s over {len(results)} kills.",
                "",
            ]
    out += ["## Failures", "", *problems(run), ""]
    return "\n".join(out)


def _backends(requested: str | None) -> list[str]:
    if requested:
        return requested.split(",")
    return ["sqlite", "postgresql"] if postgres_base_url() else ["sqlite"]


def _to_json(run: Run) -> str:
    raw = {
        "backends": run.backends,
        "procedures": run.procedures,
        "seconds": run.seconds,
        "machine": run.machine,
        "unowned": {b: dataclasses.asdict(r) for b, r in run.unowned.items()},
        "matrix": {b: [dataclasses.asdict(r) for r in rs] for b, rs in run.cases.items()},
        "crash": {b: [dataclasses.asdict(r) for r in rs] for b, rs in run.kills.items()},
    }
    return json.dumps(raw, indent=1)


def _case(raw: dict[str, Any]) -> matrix.CaseResult:
    fields = {**raw, "fault": matrix.Fault(raw["fault"]), "problems": tuple(raw["problems"])}
    return matrix.CaseResult(**fields)


def _from_json(text: str) -> Run:
    raw = json.loads(text)
    run = Run(
        backends=raw["backends"],
        procedures=raw["procedures"],
        seconds=raw["seconds"],
        machine=raw["machine"],
    )
    for backend, results in raw["matrix"].items():
        run.cases[backend] = [_case(r) for r in results]
    for backend, r in raw.get("unowned", {}).items():
        run.unowned[backend] = _case(r)
    for backend, points in raw["crash"].items():
        run.kills[backend] = [
            crash.CrashResult(
                **{**c, "moment": crash.Moment(c["moment"]), "problems": tuple(c["problems"])}
            )
            for c in points
        ]
    return run


def _failed(run: Run) -> bool:
    cases = [*(r for rs in run.cases.values() for r in rs), *run.unowned.values()]
    unexpected = [r for r in cases if not r.ok and not matrix.known_bug(r)]
    crashed = [c for cs in run.kills.values() for c in cs if not c.ok]
    return bool(unexpected or crashed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reduced", action="store_true", help="the CI size, not the full one")
    parser.add_argument("--only", choices=["matrix", "crash"], help="run one suite")
    parser.add_argument(
        "--backends",
        help="comma-separated: sqlite,postgresql (default: both when "
        "SETPOINT_TEST_DATABASE_URL is set, else sqlite)",
    )
    parser.add_argument("--json", type=Path, help="also write every result here")
    parser.add_argument("--render", type=Path, help="print the tables of a --json file again")
    args = parser.parse_args(argv)
    if args.render:
        run = _from_json(args.render.read_text())
        print(render(run))
        return 1 if _failed(run) else 0
    run = Run(backends=_backends(args.backends))
    run.machine = machine(run)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in run.backends:
            directory = Path(tmp) / backend
            directory.mkdir()
            if args.only != "crash":
                run_matrix(run, backend, directory, full=not args.reduced)
            if args.only != "matrix":
                run_crash(run, backend, directory, full=not args.reduced)
    if args.json:
        args.json.write_text(_to_json(run))
    print(render(run))
    return 1 if _failed(run) else 0
