"""The audit trail anchored as it grows: a signed checkpoint after each pass and each apply.

With an audit key (`SETPOINT_AUDIT_KEY` or `SETPOINT_AUDIT_KEY_FILE`) and a place for
checkpoints (`SETPOINT_AUDIT_CHECKPOINT_PATH`), the loop's passes and `setpoint apply` sign
the audit head and store it there, outside the database, so records after the last hand-made
checkpoint can no longer be removed unseen. Best effort for the work that triggered it: a
checkpoint that cannot be taken (a chain that does not verify, a place that cannot be
written) is reported, and never undoes or fails the pass or the apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from reconciler.errors import CheckpointError
from reconciler.records import checkpoint
from reconciler.settings import Settings

log = logging.getLogger("setpoint.audit")


@dataclass(frozen=True)
class Anchored:
    """What became of one automatic checkpoint: where it went, or why it was not taken."""

    path: Path | None = None
    seq: int | None = None
    problem: str | None = None


def audit_key_of(settings: Settings) -> str | None:
    """The audit key the settings name, or None when there is none. Raises CheckpointError
    when the key file cannot be read."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value()
    if settings.audit_key_file is None:
        return None
    try:
        return settings.audit_key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CheckpointError(
            f"cannot read the audit key file {settings.audit_key_file}: {exc.strerror}"
        ) from None


def anchor(engine: Engine, settings: Settings, now: datetime) -> Anchored | None:
    """Write a signed checkpoint of the head, taken at `now`, where the settings say; None
    when automatic checkpoints are not configured (no key, or no place)."""
    place = settings.audit_checkpoint_path
    if place is None:
        return None
    try:
        key = audit_key_of(settings)
        if key is None:
            return None
        with Session(engine) as session:
            signed = checkpoint.take(session, key, now)
        path = checkpoint.write(place, signed, keep=settings.audit_checkpoint_keep)
    except (CheckpointError, OSError) as exc:
        problem = f"no audit checkpoint written: {exc}"
        log.error("%s", problem)
        return Anchored(problem=problem)
    return Anchored(path=path, seq=int(signed["seq"]))
