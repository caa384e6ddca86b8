"""Every package the code imports is declared in pyproject.toml, so an install from the
lock file never runs on a package that only happened to come along with another one."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {"desired_state", "providers", "reconciler", "migrations", "tests", "bench", "fleet"}
SHIPPED = ("desired_state", "providers", "reconciler", "migrations")


def _declared(requirements: Iterable[str]) -> set[str]:
    return {_normal(re.split(r"[<>=~!\[; ]", r, maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(folders: Iterable[str]) -> dict[str, Path]:
    """Top-level third-party modules imported anywhere under `folders`, with one file each."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in OURS and top not in sys.stdlib_module_names:
                        found.setdefault(top, path)
    return found


def _undeclared(folders: Iterable[str], declared: set[str]) -> list[str]:
    owners = packages_distributions()
    missing = []
    for module, path in sorted(_imported(folders).items()):
        distributions = {_normal(d) for d in owners.get(module, [module])}
        if not distributions & declared:
            missing.append(f"{module} ({path.relative_to(ROOT)})")
    return missing


def test_the_shipped_code_imports_only_declared_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = _declared(project["project"]["dependencies"])
    assert _undeclared(SHIPPED, runtime) == []


def test_tests_and_benchmarks_import_only_declared_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _declared(project["project"]["dependencies"])
    declared |= _declared(project["dependency-groups"]["dev"])
    assert _undeclared(("tests", "bench"), declared) == []


def test_the_check_catches_an_undeclared_import() -> None:
    assert _undeclared(SHIPPED, _declared(["anyio"])) != []
