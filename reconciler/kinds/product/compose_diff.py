"""A compose file change as a reviewer reads it: a unified diff, credential lines masked.

A compose file carries no secret values (they arrive through `${VAR}` from the lane's
environment), but people paste one in anyway. So any line that looks like a credential
shows its key and a mask instead of its value, unless the value is only `${VAR}`
references; and any value Setpoint resolved as a secret is redacted besides.
"""

from __future__ import annotations

import difflib
import re

from reconciler.secret_values import redact

MASK = "•••• (masked: looks like a credential)"
CONTEXT_LINES = 2

_CREDENTIAL_KEY = re.compile(
    r"""^(?P<key>\s*(?:-\s*)?["']?[\w.-]*(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|
    access[_-]?key|private[_-]?key|credential|auth)[\w.-]*["']?\s*[:=]\s*)(?P<value>.*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_ONLY_REFERENCES = re.compile(r"""^["']?(?:\$\{[^}]+\}|\$[A-Za-z_]\w*)+["']?\s*$""")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_TOKEN_SHAPES = re.compile(
    r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abposr]-[\w-]{10,}|AKIA[0-9A-Z]{16}"
    r"|sk-[A-Za-z0-9_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)


def mask_line(line: str) -> str:
    """The line, or its key with the value masked when it looks like a credential."""
    keyed = _CREDENTIAL_KEY.match(line)
    if keyed and keyed["value"].strip() and not _ONLY_REFERENCES.match(keyed["value"].strip()):
        return keyed["key"] + MASK
    if _TOKEN_SHAPES.search(line):
        return _TOKEN_SHAPES.sub(MASK, line)
    return redact(_URL_USERINFO.sub(r"\g<scheme>••••:••••@", line))


def compose_diff(before: str | None, after: str | None) -> str:
    """A unified diff from the running compose file to the desired one, masked line by line."""
    old = (before or "").splitlines()
    new = (after or "").splitlines()
    lines = difflib.unified_diff(
        old,
        new,
        fromfile="running" if before is not None else "/dev/null",
        tofile="desired",
        n=CONTEXT_LINES,
        lineterm="",
    )
    return "\n".join(_mask_diff_line(line) for line in lines)


def _mask_diff_line(line: str) -> str:
    if line.startswith(("---", "+++", "@@")):
        return line
    return line[:1] + mask_line(line[1:])
