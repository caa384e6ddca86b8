"""The suite shares helpers through tests/support and conftest files, never by importing
another test module (which runs that module's tests' imports, and hides what is shared)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _test_module_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [
            n for n in names if n.startswith("tests.") and n.split(".")[-1].startswith("test_")
        ]
    return found


def _breaches(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}: {name}"
        for path in sorted(root.rglob("*.py"))
        for name in _test_module_imports(path)
    ]


def test_no_test_module_imports_another() -> None:
    assert _breaches(TESTS) == []


def test_the_check_catches_an_import_of_a_test_module(tmp_path: Path) -> None:
    (tmp_path / "test_b.py").write_text("from tests.reconciler.test_previews import NOTES\n")
    (tmp_path / "test_c.py").write_text("from tests.support import previews\n")
    assert _breaches(tmp_path) == ["test_b.py: tests.reconciler.test_previews"]
