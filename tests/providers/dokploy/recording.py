"""The recorded answers of a real Dokploy v0.30.2 server (tests/contracts/dokploy-real-v0.30.2/),
and the pieces the contract tests compare them with: answer shapes, error texts, list orders
and the ids the emulator gave the objects the real server made.

The README beside the recording says how it was made. Its answers are the oracle: where the
emulator answers differently, either the emulator is wrong or the difference is listed, with
its reason, in test_recorded_real.py and docs/providers/dokploy.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RECORDING = Path(__file__).parents[2] / "contracts" / "dokploy-real-v0.30.2"
# Dev mode adds `data.stack` to error bodies; production servers leave it out (README).
IGNORED_PATHS = frozenset({"$.data.stack"})
# Keys whose values name an object: what the replay maps from recorded ids to emulator ids.
_NAMING_KEYS = ("appName",)


@dataclass(frozen=True)
class Exchange:
    seq: int
    step: str
    at: str
    method: str
    procedure: str
    query: dict[str, str]
    request: dict[str, Any]
    status: int
    content_type: str | None
    response: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.method} {self.procedure}"

    @property
    def json(self) -> Any:
        return self.response.get("json")


@cache
def exchanges() -> tuple[Exchange, ...]:
    """Every recorded exchange, in scenario order."""
    index = json.loads((RECORDING / "index.json").read_text())
    out: list[Exchange] = []
    for step in index["steps"]:
        for raw in json.loads((RECORDING / step["file"]).read_text())["exchanges"]:
            out.append(
                Exchange(
                    seq=raw["seq"],
                    step=raw["step"],
                    at=raw["at"],
                    method=raw["method"],
                    procedure=raw["procedure"],
                    query=raw["query"],
                    request=raw["request"],
                    status=raw["status"],
                    content_type=raw.get("response_content_type"),
                    response=raw["response"],
                )
            )
    return tuple(sorted(out, key=lambda e: e.seq))


def js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(value: Any, path: str = "$") -> set[tuple[str, str]]:
    """(JSON path, JSON type) of every value; list items share the path `[]`."""
    if path in IGNORED_PATHS:
        return set()
    out = {(path, js_type(value))}
    if isinstance(value, dict):
        for key, item in value.items():
            out |= shape(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            out |= shape(item, f"{path}[]")
    return out


def orders(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Each list of rows with distinct `createdAt` stamps: 'oldest first' or 'newest first'."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from orders(item, f"{path}.{key}")
        return
    if not isinstance(value, list):
        return
    raw = [v.get("createdAt") for v in value if isinstance(v, dict)]
    stamps = [s for s in raw if isinstance(s, str)]
    if len(stamps) >= 2 and len(stamps) == len(raw) and len(set(stamps)) > 1:
        if stamps == sorted(stamps):
            yield path, "oldest first"
        elif stamps == sorted(stamps, reverse=True):
            yield path, "newest first"
    for item in value:
        yield from orders(item, f"{path}[]")


def learn_ids(real: Any, emulated: Any, ids: dict[str, str]) -> None:
    """Map the recorded ids (and appNames) of an answer to the emulator's, walking both
    objects side by side. Lists are skipped: their orders are what the tests compare."""
    if not (isinstance(real, dict) and isinstance(emulated, dict)):
        return
    for key, value in real.items():
        other = emulated.get(key)
        naming = key.endswith("Id") or key in _NAMING_KEYS
        if naming and isinstance(value, str) and isinstance(other, str) and value != other:
            ids.setdefault(value, other)
        elif isinstance(value, dict):
            learn_ids(value, other, ids)


def with_ids(value: Any, ids: dict[str, str]) -> Any:
    """A recorded request with the emulator's ids in place of the recorded ones."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: with_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [with_ids(v, ids) for v in value]
    return value
