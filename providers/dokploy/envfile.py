"""Dokploy env text (`KEY=VALUE` lines) as an ordered document.

Operators edit env in Dokploy's UI too, so we change only the keys we own and keep every
other line (comments, blank lines, unknown keys, their order and spelling) byte for byte.
Values are secrets: no repr or str here ever shows one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=(.*)$")
_VALID_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_NEEDS_QUOTES = re.compile(r"[\s#\"'\\]")


@dataclass(frozen=True)
class EnvLine:
    """One line. `key` is None for comments, blanks and lines we cannot parse."""

    raw: str
    key: str | None = None
    value: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"EnvLine(key={self.key!r})" if self.key else "EnvLine(<non-pair>)"


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        out: list[str] = []
        i = 0
        while i < len(inner):
            ch = inner[i]
            if ch == "\\" and i + 1 < len(inner):
                nxt = inner[i + 1]
                out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return text


def quote_value(value: str) -> str:
    """Render a value so that parsing the line gives it back unchanged."""
    if not _NEEDS_QUOTES.search(value):
        return value
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def render_pair(key: str, value: str) -> str:
    return f"{key}={quote_value(value)}"


class EnvFile:
    """Parsed env text. Later duplicates of a key win, as in Docker's env-file handling."""

    def __init__(self, lines: list[EnvLine], trailing_newline: bool) -> None:
        self.lines = lines
        self.trailing_newline = trailing_newline

    @classmethod
    def parse(cls, text: str | None) -> EnvFile:
        text = text or ""
        trailing = text.endswith("\n")
        body = text[:-1] if trailing else text
        lines: list[EnvLine] = []
        if body or trailing:
            for raw in body.split("\n"):
                match = _KEY.match(raw)
                if match and not raw.lstrip().startswith("#"):
                    lines.append(EnvLine(raw, match.group(1), _unquote(match.group(2))))
                else:
                    lines.append(EnvLine(raw))
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
    """The effective `KEY -> value` mapping of env text."""
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
