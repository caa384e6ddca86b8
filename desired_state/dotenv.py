"""Env text as Dokploy reads it: npm `dotenv` 16.4.5's `parse`, and the value encoder.

Dokploy v0.30 parses a service's env text with the npm package `dotenv` 16.4.5 when it
deploys. Its rules are not shell's, nor python-dotenv's: one regular expression (`LINE`)
finds `KEY=value` pairs; a value is unquoted (to `#` or the end of the line, trimmed) or
quoted with `'`, `"` or a backtick (a quoted value may span lines); quotes are stripped;
inside double quotes only `\\n` and `\\r` become a line feed and a carriage return; no other
escape exists. Then Dokploy expands `${{...}}` references and fails the deploy on an unknown
name. `parse` below is a port of that function (its LINE expression rewritten with the
JavaScript meaning of `\\s`, `\\w`, `.`, `^` and `$`), checked against the real package by
tests/providers/dokploy/test_dotenv_real.py.

`encode_value` picks, per value, the spelling that `parse` gives back unchanged (bare,
single, double or backtick quotes); `carry_problem` says why a value has no such spelling,
never quoting the value: the values are often secrets. Desired state refuses such values at
`setpoint validate` (invariant 16); this module imports nothing of ours, so the Dokploy
provider uses the same rules to write and read env text.
"""

from __future__ import annotations

import re

# JavaScript's \s (WhiteSpace and LineTerminator) and the line terminators of `^`/`$`/`.`.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_SPACE_CHARS = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_EOL = "\n\r\u2028\u2029"
_S = f"[{_JS_SPACE}]"
_BOL = f"(?<![^{_JS_EOL}])"  # `^` with the m flag: the start, or just after a line end
_EOL = f"(?![^{_JS_EOL}])"  # `$` with the m flag: the end, or just before a line end
_DOT = f"[^{_JS_EOL}]"

# dotenv 16.4.5 lib/main.js:
#   /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"
#    |\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/mg
_LINE = re.compile(
    rf"{_BOL}{_S}*(?:export{_S}+)?([A-Za-z0-9_.-]+)(?:{_S}*={_S}*?|:{_S}+?)"
    rf"({_S}*'(?:\\'|[^'])*'|{_S}*\"(?:\\\"|[^\"])*\"|{_S}*`(?:\\`|[^`])*`|[^#\r\n]+)?"
    rf"{_S}*(?:#{_DOT}*)?{_EOL}"
)
# value.replace(/^(['"`])([\s\S]*)\1$/mg, '$2')
_SURROUNDING_QUOTES = re.compile(rf"{_BOL}(['\"`])([\s\S]*)\1{_EOL}")
_NEWLINES = re.compile(r"\r\n?")

# What Dokploy does after the parse: `${{project.X}}`, `${{environment.X}}`, `${{X}}`.
TEMPLATE_OPENER = "${{"


class Pair:
    """One `KEY=value` dotenv found: the key, the parsed value, where the key and value end."""

    __slots__ = ("end", "key", "key_start", "value")

    def __init__(self, key: str, value: str, key_start: int, end: int) -> None:
        self.key = key
        self.value = value
        self.key_start = key_start
        self.end = end  # just after the value as written (or the key, if it has none)

    def __repr__(self) -> str:
        return f"Pair(key={self.key!r})"  # values are secrets


def normalize_newlines(text: str) -> str:
    """dotenv reads `\\r\\n` and a lone `\\r` as `\\n` before anything else."""
    return _NEWLINES.sub("\n", text)


def pairs(text: str) -> list[Pair]:
    """Every pair dotenv finds in (newline-normalized) `text`, in order, duplicates kept."""
    found: list[Pair] = []
    for match in _LINE.finditer(text):
        raw = match.group(2)
        end = match.end(2) if raw is not None else match.end(1)
        found.append(Pair(match.group(1), _value(raw or ""), match.start(1), end))
    return found


def _value(raw: str) -> str:
    value = raw.strip(_JS_SPACE_CHARS)
    double = value[:1] == '"'
    value = _SURROUNDING_QUOTES.sub(r"\2", value)
    if double:
        value = value.replace("\\n", "\n").replace("\\r", "\r")
    return value


def parse(text: str | None) -> dict[str, str]:
    """`require('dotenv').parse(text)`: later duplicates of a key win."""
    return {pair.key: pair.value for pair in pairs(normalize_newlines(text or ""))}


# -- writing ---------------------------------------------------------------------------------

# Lines after a written pair that would end a quoted value running past its closing quote: a
# spelling is kept only if these still parse as themselves after it (see `_carries`).
_PROBE_TAIL = "\nZ_PROBE1=q'\nZ_PROBE2=q\"\nZ_PROBE3=q`\nZ_PROBE4=q\n"
_PROBE_VALUES = {"Z_PROBE1": "q'", "Z_PROBE2": 'q"', "Z_PROBE3": "q`", "Z_PROBE4": "q"}
_QUOTES = "'\"`"


def _spellings(value: str) -> list[str]:
    """Candidate spellings, the plainest first."""
    found: list[str] = []
    if value and value[0] not in _QUOTES and value[0] not in _JS_SPACE_CHARS:
        found.append(value)
    found.append(f"'{value}'")
    found.append('"' + value.replace("\n", "\\n").replace("\r", "\\r") + '"')
    found.append(f"`{value}`")
    return found


def _carries(spelling: str, value: str) -> bool:
    return parse(f"K={spelling}{_PROBE_TAIL}") == {"K": value, **_PROBE_VALUES}


def _unstorable(value: str) -> str | None:
    if TEMPLATE_OPENER in value:
        return (
            "it contains '${{', which Dokploy expands as a reference to another variable "
            "(an unknown name fails the deploy)"
        )
    if "\x00" in value:
        return "it contains a NUL character, which Dokploy cannot store"
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "it is not valid Unicode text (a lone surrogate)"
    return None


def carry_problem(value: str) -> str | None:
    """Why Dokploy's env parser cannot give this value back as written, or None.

    The reason names what the value holds (quote kinds, line breaks), never the value.
    """
    problem = _unstorable(value)
    if problem is not None:
        return problem
    if any(_carries(spelling, value) for spelling in _spellings(value)):
        return None
    return (
        "Dokploy's env parser (dotenv 16.4.5) changes it whatever the quoting: it holds "
        + ", ".join(_traits(value))
    )


_TRAITS = (
    ("'", "a single quote"),
    ('"', "a double quote"),
    ("`", "a backtick"),
    ("\n", "a line break"),
    ("\r", "a carriage return"),
    ("\\n", "a backslash before 'n'"),
    ("\\r", "a backslash before 'r'"),
    ("#", "'#'"),
)


def _traits(value: str) -> list[str]:
    traits = [words for needle, words in _TRAITS if needle in value]
    if value != value.strip(_JS_SPACE_CHARS):
        traits.append("whitespace at an end")
    return traits or ["characters no quoting keeps"]


class UncarriableValue(ValueError):
    """A value no dotenv spelling carries; the message names the reason, not the value."""


def encode_value(value: str) -> str:
    """The text after `KEY=` that `parse` (and so Dokploy) gives back as exactly `value`."""
    if _unstorable(value) is None:
        for spelling in _spellings(value):
            if _carries(spelling, value):
                return spelling
    raise UncarriableValue(carry_problem(value))
