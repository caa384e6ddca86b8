"""Which modules `setpoint` loads: run in a fresh interpreter by tests/cli/test_startup.py.

    python -m tests.support.startup_probe --every-help
    python -m tests.support.startup_probe validate examples/fleet

Imports the app, then invokes the given command (or `--help` of every command and group)
in process, and prints JSON: the modules loaded by the import alone, the modules loaded once
the commands ran, and each run's exit code and output. A fresh process, because the test
process has long since loaded everything.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and group under `command`, the root first."""
    # A group has `commands`; typer vendors click, so this is checked by attribute, not type.
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found.extend(command_paths(sub, (*path, name)))
    return found


def main(argv: list[str]) -> None:
    import typer
    from typer.testing import CliRunner

    from reconciler.cli.app import app

    after_import = sorted(sys.modules)
    if argv == ["--every-help"]:
        runs = [[*path, "--help"] for path in command_paths(typer.main.get_command(app))]
    else:
        runs = [argv]
    runner = CliRunner()
    results = []
    for args in runs:
        result = runner.invoke(app, args)
        results.append({"args": args, "exit_code": result.exit_code, "output": result.output})
    report = {"after_import": after_import, "after_runs": sorted(sys.modules), "runs": results}
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
