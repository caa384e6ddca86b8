"""A CLI that starts at once: `--help` and `validate` load only what they use.

Each check runs `tests.support.startup_probe` in a fresh interpreter, since this process has
loaded everything already. What is asserted is which modules get loaded, never how long it
takes: timing belongs to `bench/cli_start.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, ROOT

# Nothing a command's help needs: the database layer, HTTP, servers, crypto, settings, the
# desired-state models and the engine. Each is imported inside the command that uses it.
NOT_FOR_HELP = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "httpx",
    "anyio",
    "uvicorn",
    "fastapi",
    "cryptography",
    "pydantic_settings",
    "ruamel",
    "desired_state",
    "providers",
    "reconciler.core",
    "reconciler.kinds",
    "reconciler.loop",
    "reconciler.demo",
    "reconciler.web",
    "jinja2",
    "reconciler.records.database",
    "reconciler.settings",
)
# Validating reads YAML into the desired-state models, and touches nothing else.
NOT_FOR_VALIDATE = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "httpx",
    "uvicorn",
    "fastapi",
    "cryptography",
    "providers",
    "reconciler.core",
    "reconciler.kinds",
    "reconciler.records.database",
)


def probe(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and module, fixed arguments
        [sys.executable, "-m", "tests.support.startup_probe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden packages (or modules) found among `modules`."""
    return sorted({f for f in forbidden for m in modules if m == f or m.startswith(f + ".")})


def test_importing_the_app_and_every_help_load_none_of_the_heavy_modules() -> None:
    report = probe("--every-help")
    assert loaded(report["after_import"], NOT_FOR_HELP) == []
    assert loaded(report["after_runs"], NOT_FOR_HELP) == []
    failed = [run["args"] for run in report["runs"] if run["exit_code"] != 0]
    assert failed == []


def test_every_help_still_shows_every_command() -> None:
    runs = probe("--every-help")["runs"]
    paths = [run["args"][:-1] for run in runs]
    assert len(paths) > 20  # the walk found the whole tree, groups and their commands
    by_path = {tuple(run["args"][:-1]): run["output"] for run in runs}
    for path in paths:
        if path:
            parent = by_path[tuple(path[:-1])]
            assert path[-1] in parent, f"{' '.join(path)} is missing from its group's help"
    assert "--detailed-exitcode" in by_path[("plan",)]
    assert "Compute a plan" in by_path[("plan",)]


def test_validate_loads_no_database_and_no_http() -> None:
    report = probe("validate", str(EXAMPLES))
    assert [run["exit_code"] for run in report["runs"]] == [0]
    assert "valid:" in report["runs"][0]["output"]
    assert loaded(report["after_runs"], NOT_FOR_VALIDATE) == []


def test_the_probe_sees_what_a_command_loads(tmp_path: Path) -> None:
    """The checks above are not vacuous: a command on the database loads SQLAlchemy."""
    env = {**os.environ, "SETPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'setpoint.db'}"}
    report = probe("status", env=env)
    assert [run["exit_code"] for run in report["runs"]] == [0]
    found = loaded(report["after_runs"], NOT_FOR_VALIDATE)
    assert {"sqlalchemy", "sqlmodel", "reconciler.records.database"} <= set(found)
