"""Messages that say what to do: the closest known name, "quote it", and never the value."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

_YAML_TYPES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "list",
    dict: "mapping",
}
_SCALARS = (bool, int, float)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean `x`?` for the closest known name, compared without case; or ''."""
    choices = {name.lower(): name for name in known}
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{choices[close[0]]}`?" if close else ""


def unknown_field(name: str, known: Iterable[str]) -> str:
    return did_you_mean(name, known)


def unknown_kind(kind: Any, kinds: list[str]) -> str:
    suggestion = did_you_mean(kind, kinds) if isinstance(kind, str) else ""
    return f"unknown kind; expected one of {', '.join(kinds)}{suggestion}"


def yaml_type(value: Any) -> str:
    return "null" if value is None else _YAML_TYPES.get(type(value), type(value).__name__)


def message(error: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """A pydantic error as the operator should read it; names the type received, never the
    value: it could be a secret pasted in the wrong place."""
    kind = error["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field" + did_you_mean(str(loc[-1]), fields_at(model, loc[:-1]))
    text = str(error["msg"]).removeprefix("Value error, ")
    if not (kind.endswith("_type") or kind.endswith("_parsing")):
        return text
    received = error.get("input")
    text += f" (got {yaml_type(received)})"
    if kind == "string_type" and isinstance(received, _SCALARS):
        text += '; quote it to keep it text, as in `"1.10"` or `"yes"`'
    elif isinstance(received, str) and kind in ("int_type", "float_type", "bool_type"):
        text += "; write it without quotes"
    return text


def fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The YAML names of the fields of the model found at `loc` inside `model`, if any."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    found = _model_in(annotation)
    return [info.alias or name for name, info in found.model_fields.items()] if found else []


def _step(annotation: Any, part: str | int) -> Any:
    found = _model_in(annotation)
    if found is not None and isinstance(part, str):
        for name, info in found.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    for arg in _members(annotation):
        origin = typing.get_origin(arg)
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
    return None


def _members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in _members(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
