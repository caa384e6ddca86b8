"""The arrows between the rooms (docs/architecture.md), checked over every module's imports.

A rule broken here is a design change: change docs/architecture.md with it, or move the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler import ADAPTER_SURFACE, COMPOSITION

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("desired_state", "providers", "reconciler", "migrations")
KIND_CONTRACT = ("reconciler.kinds.base", "reconciler.kinds.registry")
ADAPTERS = ("reconciler.cli", "reconciler.api", "reconciler.web", "reconciler.demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {
    module_name(path): imports_of(path)
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def a_concrete_kind(imported: str) -> bool:
    """`reconciler.kinds` itself (which lists the kinds) or anything under a kind's folder."""
    if imported == "reconciler.kinds" or imported == "reconciler.kinds.all_kinds":
        return True
    return within(imported, "reconciler.kinds") and not any(
        within(imported, allowed) for allowed in KIND_CONTRACT
    )


def broken(source_prefixes: tuple[str, ...], forbidden: object) -> list[str]:
    assert callable(forbidden)
    return sorted(
        f"{module} imports {imported}"
        for module, imported_modules in MODULES.items()
        if any(within(module, prefix) for prefix in source_prefixes)
        for imported in imported_modules
        if forbidden(imported)
    )


def test_the_rules_see_every_room() -> None:
    for room in ("reconciler.core", "reconciler.records", "reconciler.kinds.product"):
        assert any(within(module, room) for module in MODULES), room


@pytest.mark.parametrize(
    ("rule", "sources", "forbidden"),
    [
        (
            "the engine never names a kind",
            ("reconciler.core", "reconciler.records", "reconciler.loop"),
            a_concrete_kind,
        ),
        (
            "kinds report outcomes and never write records or drive the engine",
            ("reconciler.kinds",),
            lambda m: (
                within(m, "reconciler.records")
                or any(
                    within(m, f"reconciler.core.{room}")
                    for room in ("planning", "apply", "adoption", "policy")
                )
            ),
        ),
        (
            "nothing but the adapters imports the adapters",
            (
                "reconciler.core",
                "reconciler.records",
                "reconciler.loop",
                "reconciler.kinds",
                "reconciler.runtime",
                "reconciler.fleet",
            ),
            lambda m: (
                within(m, "reconciler.cli")
                or within(m, "reconciler.demo")
                or within(m, "reconciler.web")
                or within(m, "reconciler.composition")
            ),
        ),
        (
            "what people are shown is below every adapter",
            ("reconciler.presentation",),
            lambda m: any(within(m, adapter) for adapter in (*ADAPTERS, COMPOSITION)),
        ),
        (
            "nothing but the adapters imports the API",
            (
                "reconciler.core",
                "reconciler.records",
                "reconciler.loop",
                "reconciler.kinds",
                "reconciler.runtime",
                "reconciler.fleet",
            ),
            lambda m: within(m, "reconciler.api"),
        ),
        (
            "providers never import the reconciler",
            ("providers",),
            lambda m: within(m, "reconciler"),
        ),
        (
            "providers take from desired state only the env text grammar (invariant 16)",
            ("providers",),
            lambda m: within(m, "desired_state") and not within(m, "desired_state.dotenv"),
        ),
        (
            "desired state imports neither providers nor the reconciler",
            ("desired_state",),
            lambda m: within(m, "reconciler") or within(m, "providers"),
        ),
        (
            "a migration freezes the types it used: no live code",
            ("migrations.versions",),
            lambda m: within(m, "reconciler") or within(m, "desired_state"),
        ),
    ],
)
def test_import_rule(rule: str, sources: tuple[str, ...], forbidden: object) -> None:
    assert broken(sources, forbidden) == [], rule


def engine_imports_of(adapter: str) -> list[tuple[str, str]]:
    """(module, engine module) for each engine module an adapter's modules import: a name
    imported from a module counts as that module unless it is a module itself."""
    return sorted(
        (module, imported)
        for module, imported_modules in MODULES.items()
        if within(module, adapter)
        for imported in imported_modules
        if within(imported, "reconciler")
        and imported in MODULES
        and not any(within(imported, other) for other in ADAPTERS)
    )


def on_the_surface(imported: str) -> bool:
    return any(
        within(imported, entry[:-1]) if entry.endswith(".") else imported == entry
        for entry in (*ADAPTER_SURFACE, COMPOSITION)
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_imports_only_the_engine_surface(adapter: str) -> None:
    """`reconciler.ADAPTER_SURFACE` is all of the engine an adapter may use."""
    assert any(within(module, adapter) for module in MODULES), adapter
    off = [f"{m} imports {i}" for m, i in engine_imports_of(adapter) if not on_the_surface(i)]
    assert off == [], "use the surface in reconciler/__init__.py, or widen it on purpose"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_no_adapter_imports_another(adapter: str) -> None:
    others = tuple(other for other in ADAPTERS if other != adapter)
    assert broken((adapter,), lambda m: any(within(m, o) for o in others)) == []


def test_only_the_cli_and_the_demo_start_other_adapters() -> None:
    """Through `reconciler.composition`; the API and the pages never reach for it."""
    assert broken(("reconciler.api", "reconciler.web"), lambda m: within(m, COMPOSITION)) == []
    starters = {m.split(".")[1] for m, i in MODULES.items() for _ in [i] if COMPOSITION in i}
    assert starters == {"cli", "demo"}


def test_the_surface_names_modules_that_exist() -> None:
    for entry in ADAPTER_SURFACE:
        found = (
            any(m.startswith(entry) for m in MODULES) if entry.endswith(".") else entry in MODULES
        )
        assert found, entry


def test_a_rule_catches_a_breach() -> None:
    """The checker itself: a kind import from the engine is found."""
    MODULES["reconciler.core.__probe__"] = {"reconciler.kinds.product.kind"}
    try:
        assert broken(("reconciler.core",), a_concrete_kind) == [
            "reconciler.core.__probe__ imports reconciler.kinds.product.kind"
        ]
    finally:
        del MODULES["reconciler.core.__probe__"]


def test_the_surface_rule_catches_a_breach() -> None:
    """The web reaching into a kind's folder, or into the CLI, is found."""
    MODULES["reconciler.web.__probe__"] = {
        "reconciler.kinds.preview.lanes",
        "reconciler.kinds.preview.lanes.preview_set",
        "reconciler.cli.render",
    }
    try:
        off = [i for m, i in engine_imports_of("reconciler.web") if not on_the_surface(i)]
        assert off == ["reconciler.kinds.preview.lanes"]
        assert broken(("reconciler.web",), lambda m: within(m, "reconciler.cli")) == [
            "reconciler.web.__probe__ imports reconciler.cli.render"
        ]
    finally:
        del MODULES["reconciler.web.__probe__"]


def test_every_engine_exception_lives_in_errors_under_one_root() -> None:
    import reconciler.errors as errors

    public = [
        obj
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, BaseException) and not name.startswith("_")
    ]
    assert len(public) >= 10 and all(issubclass(cls, errors.SetpointError) for cls in public)
    elsewhere = sorted(
        f"{path.relative_to(ROOT)}: {node.name}"
        for path in (ROOT / "reconciler").rglob("*.py")
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and any(
            isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception"))
            for base in node.bases
        )
    )
    assert elsewhere == [], "define engine exceptions in reconciler/errors.py"


# Issue 24: every time the engine decides or records by is the runtime's (`Runtime.clock`,
# `Runtime.now()`), so tests and the demo move a `ShiftedClock` instead of waiting. The wall
# clock is read in reconciler/runtime.py alone; `time.monotonic` (a duration, never a time of
# day) stays allowed. A reference counts as much as a call: a default of `time.time` or
# `utcnow` reads the wall clock for every caller that forgets the runtime's.
CLOCKED_ROOMS = ("core", "kinds", "records", "loop")
WALL_CLOCK = frozenset(
    {
        "time.time",
        "time.time_ns",
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.date.today",
    }
)


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of names, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def wall_clock_reads(tree: ast.AST) -> list[str]:
    """Where `tree` reads the wall clock: `line N: what`, in line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            name = dotted(node)
            if name is not None and (name in WALL_CLOCK or name.split(".")[-1] == "utcnow"):
                found.append((node.lineno, name))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "utcnow" or f"{node.module}.{alias.name}" in WALL_CLOCK:
                    found.append((node.lineno, f"imports {node.module}.{alias.name}"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_the_engine_reads_time_only_from_the_runtimes_clock() -> None:
    rooms = [ROOT / "reconciler" / room for room in CLOCKED_ROOMS]
    assert all(room.is_dir() for room in rooms)
    found = [
        f"{path.relative_to(ROOT)} {where}"
        for room in rooms
        for path in sorted(room.rglob("*.py"))
        for where in wall_clock_reads(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert found == [], "read Runtime.now() or Runtime.clock, or take a clock from the caller"


def test_the_clock_rule_catches_a_breach() -> None:
    """The checker itself: each way of reading the wall clock is found, a duration is not."""
    probe = """
import time
from datetime import UTC, date, datetime
from reconciler.runtime import utcnow

stamped = Field(default_factory=utcnow)
clock = time.time
started = time.monotonic()
at = datetime.now(UTC)
day = date.today()
"""
    assert wall_clock_reads(ast.parse(probe)) == [
        "line 4: imports reconciler.runtime.utcnow",
        "line 6: utcnow",
        "line 7: time.time",
        "line 9: datetime.now",
        "line 10: date.today",
    ]
