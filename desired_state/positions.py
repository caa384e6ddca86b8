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
    return _walk(node, (), positions), positions


def _walk(value: Any, path: Path, positions: dict[Path, Position]) -> Any:
    if isinstance(value, CommentedMap):
        return _walk_map(value, path, positions)
    if isinstance(value, CommentedSeq):
        return _walk_seq(value, path, positions)
    return _plain_scalar(value)


def _walk_map(value: CommentedMap, path: Path, positions: dict[Path, Position]) -> dict[Any, Any]:
    positions.setdefault(path, (value.lc.line, value.lc.col))
    out: dict[Any, Any] = {}
    for key, item in value.items():
        child = (*path, str(key))
        line, col = value.lc.key(key)
        positions[child] = (line, col)
        if isinstance(item, CommentedMap | CommentedSeq):
            vline, vcol = value.lc.value(key)
            positions[(*child, "<value>")] = (vline, vcol)
        out[str(key) if not isinstance(key, str) else key] = _walk(item, child, positions)
    return out


def _walk_seq(value: CommentedSeq, path: Path, positions: dict[Path, Position]) -> list[Any]:
    positions.setdefault(path, (value.lc.line, value.lc.col))
    items = []
    for index, item in enumerate(value):
        line, col = value.lc.item(index)
        positions[(*path, index)] = (line, col)
        items.append(_walk(item, (*path, index), positions))
    return items


# bool comes first: it is an int, and must stay a bool.
_PLAIN_SCALARS: tuple[type, ...] = (bool, str, int, float)


def _plain_scalar(value: Any) -> Any:
    # ruamel's scalar subclasses (ScalarFloat, ScalarInt, ...) become the plain builtins
    # strict validation expects.
    for kind in _PLAIN_SCALARS:
        if isinstance(value, kind):
            return kind(value)
    return value


def nearest(positions: dict[Path, Position], path: Path) -> Position:
    """Position of the deepest recorded ancestor of `path` (a missing field has none itself)."""
    for end in range(len(path), -1, -1):
        found = positions.get(path[:end])
        if found is not None:
            return found
    return (0, 0)
