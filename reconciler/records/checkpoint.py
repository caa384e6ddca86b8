"""Signed checkpoints of the audit head: the anchor of the chain outside the database.

The hash chain proves that the records in the database are consistent with each other. It
cannot prove that none are missing from the end, or that the whole trail was not rebuilt:
anyone who can write the database can recompute every hash. A checkpoint records the head
(its seq and hash) at a moment, signed with HMAC-SHA256 under a key kept outside the
database (`SETPOINT_AUDIT_KEY`). Verifying against a checkpoint then proves that the record
it names is still there with the same hash, so nothing up to it was edited, removed or
rewritten since, and a forged checkpoint needs the key.

Checkpoints are kept in a place outside the database (`write`, `newest`): one file,
replaced atomically each time, or a directory of files named by the head they vouch for
(`checkpoint-<seq>-<time>.json`), of which the newest `keep` stay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from reconciler.errors import CheckpointError
from reconciler.records.audit import AuditRecord, ChainVerification, verify_chain

FORMAT = "setpoint-audit-checkpoint/1"
MIN_KEY_CHARS = 32


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str

    def signed_fields(self) -> bytes:
        fields = {"format": FORMAT, "seq": self.seq, "hash": self.hash, "at": self.at}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def generate_key() -> str:
    return secrets.token_urlsafe(32)


def _check_key(key: str) -> bytes:
    if len(key) < MIN_KEY_CHARS:
        raise CheckpointError(
            f"the audit key must be at least {MIN_KEY_CHARS} characters "
            "(make one with `setpoint audit keygen`)"
        )
    return key.encode()


def _signature(key: str, checkpoint: Checkpoint) -> str:
    return hmac.new(_check_key(key), checkpoint.signed_fields(), hashlib.sha256).hexdigest()


def take(session: Session, key: str, now: datetime) -> dict[str, Any]:
    """A signed checkpoint of the current head at `now`; refused when the chain does not
    verify."""
    _check_key(key)
    result = verify_chain(session)
    if not result.ok:
        raise CheckpointError(
            f"the audit chain does not verify ({result.reason}): no checkpoint is signed over it"
        )
    last = session.get(AuditRecord, result.checked) if result.checked else None
    checkpoint = Checkpoint(
        seq=result.checked,
        hash=last.hash if last is not None else "0" * 64,
        at=now.isoformat(),
    )
    return {**json.loads(checkpoint.signed_fields()), "signature": _signature(key, checkpoint)}


def load(text: str, key: str) -> Checkpoint:
    """The checkpoint in `text`, once its signature is shown to be ours."""
    try:
        data = json.loads(text)
        checkpoint = Checkpoint(seq=int(data["seq"]), hash=str(data["hash"]), at=str(data["at"]))
        signature, form = str(data["signature"]), data["format"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError("the checkpoint file is not a Setpoint audit checkpoint") from None
    if form != FORMAT:
        raise CheckpointError(f"the checkpoint is in format {form!r}; this Setpoint reads {FORMAT}")
    if not hmac.compare_digest(signature, _signature(key, checkpoint)):
        raise CheckpointError(
            "the checkpoint's signature does not match: it was edited, or signed with "
            "another SETPOINT_AUDIT_KEY"
        )
    return checkpoint


def verify_against(session: Session, checkpoint: Checkpoint) -> ChainVerification:
    """The chain verifies, and still holds the record the checkpoint vouches for, unchanged."""
    result = verify_chain(session)
    if not result.ok:
        return result
    taken = f"the checkpoint of {checkpoint.at}"
    if result.checked < checkpoint.seq:
        return ChainVerification(
            False,
            result.checked,
            result.checked + 1,
            f"the trail ends at record {result.checked} but {taken} vouches for record "
            f"{checkpoint.seq}: records were removed from the end, or the trail was wiped",
        )
    row = session.get(AuditRecord, checkpoint.seq) if checkpoint.seq else None
    found = row.hash if row is not None else "0" * 64
    if found != checkpoint.hash:
        return ChainVerification(
            False,
            0,
            checkpoint.seq,
            f"record {checkpoint.seq} differs from {taken}: the trail was rewritten at or "
            f"before record {checkpoint.seq}",
        )
    return result


CHECKPOINT_FILES = "checkpoint-*.json"


def write(place: Path, signed: dict[str, Any], *, keep: int) -> Path:
    """Store a signed checkpoint at `place`: the file itself, or a new file in the directory
    (then only the newest `keep` stay). Written whole or not at all (a rename)."""
    if place.is_dir():
        stamp = str(signed["at"]).replace(":", "").replace("+", "Z")
        target = place / f"checkpoint-{int(signed['seq']):012d}-{stamp}.json"
    else:
        target = place
    text = json.dumps(signed, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".checkpoint-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if place.is_dir():
        for old in sorted(place.glob(CHECKPOINT_FILES))[:-keep]:
            old.unlink(missing_ok=True)
    return target


def newest(place: Path) -> Path | None:
    """The newest checkpoint at `place` (the file, or the directory's latest); None if none."""
    if place.is_dir():
        files = sorted(place.glob(CHECKPOINT_FILES))
        return files[-1] if files else None
    return place if place.is_file() else None
