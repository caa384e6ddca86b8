"""Turn a ruamel round-trip tree into plain data plus a map of where each value was written."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 0-based line, column as ruamel reports them


MAX_DEPTH = 32  # a Product is about 6 deep; deeper is a mistake or an attack
MAX_KEYS = 1000  # entries in one mapping or list
MAX_VALUES = 100_000  # values in one document, aliases counted each time they are used


class TooLarge(Exception):
    """The input passed a bound; `path` is where, for a located error."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Walk:
    def __init__(self) -> None:
        self.positions: dict[Path, Position] = {}
        self.values = 0

    def count(self, path: Path, size: int) -> None:
        self.values += 1 + size
        if len(path) > MAX_DEPTH:
            raise TooLarge(path, f"nested more than {MAX_DEPTH} levels deep")
        if size > MAX_KEYS:
            raise TooLarge(path, f"more than {MAX_KEYS} entries in one mapping or list")
        if self.values > MAX_VALUES:
            raise TooLarge(
                path,
                f"the document expands to more than {MAX_VALUES} values "
                "(aliases are counted each time they are used)",
            )


def plain_with_positions(node: Any) -> tuple[Any, dict[Path, Position]]:
    """Plain dicts/lists/scalars (what pydantic validates strictly) and their positions.

    For a mapping entry the position of the key is recorded under the entry's path, so that
    "unknown field" and "wrong type" both point at the line the operator wrote. Raises
    `TooLarge` past the bounds above: an alias bomb would otherwise expand without end.
    """
    walk = _Walk()
    return _walk(node, (), walk), walk.positions


def _walk(value: Any, path: Path, walk: _Walk) -> Any:
    if isinstance(value, CommentedMap):
        return _walk_map(value, path, walk)
    if isinstance(value, CommentedSeq):
        return _walk_seq(value, path, walk)
    walk.count(path, 0)
    return _plain_scalar(value)


def _walk_map(value: CommentedMap, path: Path, walk: _Walk) -> dict[Any, Any]:
    positions = walk.positions
    positions.setdefault(path, (value.lc.line, value.lc.col))
    walk.count(path, len(value))
    out: dict[Any, Any] = {}
    for key, item in value.items():
        child = (*path, str(key))
        line, col = value.lc.key(key) if key in value.lc.data else positions[path]
        positions[child] = (line, col)
        if isinstance(item, CommentedMap | CommentedSeq):
            vline, vcol = value.lc.value(key) if key in value.lc.data else (line, col)
            positions[(*child, "<value>")] = (vline, vcol)
        out[str(key) if not isinstance(key, str) else key] = _walk(item, child, walk)
    return out


def _walk_seq(value: CommentedSeq, path: Path, walk: _Walk) -> list[Any]:
    positions = walk.positions
    positions.setdefault(path, (value.lc.line, value.lc.col))
    walk.count(path, len(value))
    items = []
    for index, item in enumerate(value):
        line, col = value.lc.item(index)
        positions[(*path, index)] = (line, col)
        items.append(_walk(item, (*path, index), walk))
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
