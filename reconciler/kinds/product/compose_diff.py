"""A compose file change as a reviewer reads it: a unified diff, credential lines masked.

A compose file carries no secret values (they arrive through `${VAR}` from the lane's
environment), but people paste one in anyway. So any line that looks like a credential
shows its key and a mask instead of its value, unless the value is only `${VAR}`
references; and any value Setpoint resolved as a secret is redacted besides.
"""

from __future__ import annotations

import difflib

from desired_state.secrets import (
    COMPOSE_CREDENTIAL_KEY,
    ONLY_REFERENCES,
    TOKEN_SHAPES,
    URL_USERINFO,
)
from reconciler.secret_values import redact

MASK = "•••• (masked: looks like a credential)"
CONTEXT_LINES = 2


def mask_line(line: str) -> str:
    """The line, or its key with the value masked when it looks like a credential."""
    keyed = COMPOSE_CREDENTIAL_KEY.match(line)
    if keyed and keyed["value"].strip() and not ONLY_REFERENCES.match(keyed["value"].strip()):
        return keyed["key"] + MASK
    if TOKEN_SHAPES.search(line):
        return TOKEN_SHAPES.sub(MASK, line)
    return redact(URL_USERINFO.sub(r"\g<scheme>••••:••••@", line))


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
