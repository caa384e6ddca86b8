"""Dokploy env text (`KEY=VALUE` pairs) as an ordered document.

Operators edit env in Dokploy's UI too, so we change only the keys we own and keep every
other line (comments, blank lines, unknown keys, their order and spelling) as it was; text
with `\r\n` line ends comes back with `\n` ones (Dokploy's parser reads both the same).
Text is read as Dokploy reads it at deploy (npm `dotenv` 16.4.5, `desired_state.dotenv`), so
what a plan compares is what the service gets, and a value is written in the one spelling
that parser gives back unchanged; a value no spelling carries is refused by key
(invariant 16). Values are secrets: no repr or str here ever shows one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from desired_state.dotenv import UncarriableValue, encode_value, normalize_newlines, pairs

_VALID_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class EnvLine:
    """One pair (its lines: a quoted value may span several), or one other line.

    `key` is None for comments, blanks and lines the parser finds no pair in.
    """

    raw: str
    key: str | None = None
    value: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"EnvLine(key={self.key!r})" if self.key else "EnvLine(<non-pair>)"


def quote_value(value: str) -> str:
    """Render a value so that Dokploy's parser gives it back unchanged.

    Raises `UncarriableValue` (a ValueError naming the reason, never the value) when no
    spelling does; desired state refuses such values before this is reached.
    """
    return encode_value(value)


def render_pair(key: str, value: str) -> str:
    try:
        return f"{key}={quote_value(value)}"
    except UncarriableValue as exc:
        raise UncarriableValue(f"env {key}: {exc}") from None


class EnvFile:
    """Parsed env text. Later duplicates of a key win, as in dotenv."""

    def __init__(self, lines: list[EnvLine], trailing_newline: bool) -> None:
        self.lines = lines
        self.trailing_newline = trailing_newline

    @classmethod
    def parse(cls, text: str | None) -> EnvFile:
        text = normalize_newlines(text or "")
        trailing = text.endswith("\n")
        body = text[:-1] if trailing else text
        lines: list[EnvLine] = []
        at = 0  # the start of the first line not yet taken
        for pair in pairs(body):
            first = body.rfind("\n", 0, pair.key_start) + 1
            last = body.find("\n", pair.end)
            last = len(body) if last == -1 else last
            if first > at:
                lines.extend(EnvLine(raw) for raw in body[at : first - 1].split("\n"))
            lines.append(EnvLine(body[first:last], pair.key, pair.value))
            at = last + 1
        if at <= len(body) and (body or trailing):
            lines.extend(EnvLine(raw) for raw in body[at:].split("\n"))
        return cls(lines, trailing)

    def render(self) -> str:
        text = "\n".join(line.raw for line in self.lines)
        return text + "\n" if self.trailing_newline and self.lines else text

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for line in self.lines:
            if line.key is not None:
                seen.setdefault(line.key, None)
        return list(seen)

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.lines:
            if line.key is not None and line.value is not None:
                out[line.key] = line.value
        return out

    def __repr__(self) -> str:
        return f"EnvFile(keys={self.keys()!r})"


def parse(text: str | None) -> dict[str, str]:
    """The effective `KEY -> value` mapping of env text, as Dokploy's parser reads it."""
    return EnvFile.parse(text).as_dict()


def merge(
    existing_text: str | None,
    owned: Mapping[str, str],
    removed_keys: Iterable[str] = (),
) -> str:
    """Set the owned keys, drop the removed ones, and leave every other line alone.

    An owned key keeps the position of its first occurrence; later duplicates are dropped
    so the result has one unambiguous value. New keys are appended in `owned` order.
    """
    bad = [k for k in owned if not _VALID_KEY.match(k)]
    if bad:
        raise ValueError(f"not valid env keys: {sorted(bad)}")
    doc = EnvFile.parse(existing_text)
    removed = set(removed_keys) - set(owned)
    written: set[str] = set()
    out: list[EnvLine] = []
    for line in doc.lines:
        key = line.key
        if key is None:
            out.append(line)
        elif key in removed:
            continue
        elif key in owned:
            if key in written:
                continue
            written.add(key)
            if line.value == owned[key]:
                out.append(line)  # unchanged value: keep the operator's spelling
            else:
                out.append(EnvLine(render_pair(key, owned[key]), key, owned[key]))
        else:
            out.append(line)
    for key, value in owned.items():
        if key not in written:
            out.append(EnvLine(render_pair(key, value), key, value))
    trailing = doc.trailing_newline or not doc.lines
    return EnvFile(out, trailing).render() if out else ""
