"""Turn a ruamel round-trip tree into plain data plus a map of where each value was written."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 0-based line, column as ruamel reports them


def plain_with_positions(node: Any) -> tuple[Any, dict[Path, Position]]:
    """Plain dicts/lists/scalars (what pydantic validates strictly) and their positions.

    For a mapping entry the position of the key is recorded under the entry's path, so that
    "unknown field" and "wrong type" both point at the line the operator wrote.
    """
    positions: dict[Path, Position] = {}

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, CommentedMap):
            positions.setdefault(path, (value.lc.line, value.lc.col))
            out: dict[Any, Any] = {}
            for key, item in value.items():
                child = (*path, str(key))
                line, col = value.lc.key(key)
                positions[child] = (line, col)
                if isinstance(item, CommentedMap | CommentedSeq):
                    vline, vcol = value.lc.value(key)
                    positions[(*child, "<value>")] = (vline, vcol)
                out[str(key) if not isinstance(key, str) else key] = walk(item, child)
            return out
        if isinstance(value, CommentedSeq):
            positions.setdefault(path, (value.lc.line, value.lc.col))
            items = []
            for index, item in enumerate(value):
                line, col = value.lc.item(index)
                positions[(*path, index)] = (line, col)
                items.append(walk(item, (*path, index)))
            return items
        # ruamel's scalar subclasses (ScalarFloat, ScalarInt, ...) become the plain builtins
        # strict validation expects.
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        return value

    return walk(node, ()), positions


def nearest(positions: dict[Path, Position], path: Path) -> Position:
    """Position of the deepest recorded ancestor of `path` (a missing field has none itself)."""
    for end in range(len(path), -1, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return (0, 0)
