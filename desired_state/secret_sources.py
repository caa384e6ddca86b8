"""Where a secret reference may read: the operator's rules, so that whoever may edit desired
state cannot copy Setpoint's own credentials (or any file of the machine) into a service.

`fromEnv` reads only names the operator allows (a prefix, default `SETPOINT_SECRET_`, or an
explicit list), and never one of Setpoint's own settings (its Dokploy API key, store key,
audit key, database URL, GitHub token...). `fromFile` reads only regular files inside one
folder (`SETPOINT_SECRET_FILE_DIR`): no `..`, no absolute path outside it, no symlink out of
it, and no more than `MAX_SECRET_FILE_BYTES`.

The same rules run twice: on the text at `validate` (`problems`, one line per key) and on the
machine when a value is read (`reconciler.secret_values.resolve`, which also resolves
symlinks and checks the file itself).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

SETPOINT_NAMESPACE = "SETPOINT_"  # every setting of Setpoint's own starts with it
DEFAULT_ENV_PREFIX = "SETPOINT_SECRET_"
MAX_SECRET_FILE_BYTES = 64 * 1024  # a key, a certificate, a password: never a megabyte

FieldPath = tuple[str | int, ...]


class SourceRefused(ValueError):
    """A secret reference points where the operator's rules do not let it read."""


@dataclass(frozen=True)
class SecretSources:
    """The operator's rules for `fromEnv` and `fromFile`. `reserved`: Setpoint's own
    settings, never read whatever the prefix or the allow list say."""

    reserved: frozenset[str]
    env_prefix: str = DEFAULT_ENV_PREFIX
    env_allow: frozenset[str] = frozenset()
    file_dir: Path | None = None  # None: fromFile is off

    def env_refusal(self, name: str) -> str | None:
        """Why `fromEnv: name` may not be read, or None. Of Setpoint's own namespace, only
        SETPOINT_SECRET_* names that are no setting are ever read, whatever the rules say."""
        own = name in self.reserved or (
            name.startswith(SETPOINT_NAMESPACE) and not name.startswith(DEFAULT_ENV_PREFIX)
        )
        if own:
            return f"{name} is one of Setpoint's own settings: fromEnv never reads them"
        if name in self.env_allow:
            return None
        if self.env_prefix and name.startswith(self.env_prefix):
            return None
        return f"fromEnv reads only variables named {self._allowed()}; {name} is not one of them"

    def _allowed(self) -> str:
        ways = [f"{self.env_prefix}* (SETPOINT_SECRET_ENV_PREFIX)"] if self.env_prefix else []
        ways.append("in SETPOINT_SECRET_ENV_ALLOW")
        return " or ".join(ways)

    def file_refusal(self, path: str) -> str | None:
        """Why `fromFile: path` may not be read, judged on the text alone, or None."""
        if self.file_dir is None:
            return "fromFile is off: set SETPOINT_SECRET_FILE_DIR to the folder secret files are in"
        given = PurePath(path)
        if ".." in given.parts:
            return f"fromFile may not climb out of its folder with '..' ({path})"
        if given.is_absolute() and not given.is_relative_to(self.file_dir):
            return f"fromFile reads only inside {self.file_dir} (SETPOINT_SECRET_FILE_DIR)"
        return None

    def file_to_read(self, path: str) -> Path:
        """The file `fromFile: path` reads, after every rule held on the machine: resolved
        inside the folder (no symlink out), a regular file, and not too big. Raises
        SourceRefused with the reason, or OSError when the file cannot be looked at."""
        refusal = self.file_refusal(path)
        if refusal is not None:
            raise SourceRefused(refusal)
        assert self.file_dir is not None
        folder = self.file_dir.resolve()
        try:
            target = (folder / path).resolve(strict=True)
        except RuntimeError:  # a symlink loop
            raise SourceRefused("fromFile leads into a symlink loop") from None
        if not target.is_relative_to(folder):
            raise SourceRefused(f"fromFile leads out of {self.file_dir} (a symlink?)")
        return target

    def read_file(self, path: str) -> bytes:
        """The bytes of `fromFile: path`; the file is opened once, without following a last
        symlink swapped in after the check, and judged on what was opened."""
        target = self.file_to_read(path)
        # Non-blocking, so that a FIFO cannot hold the reader; a regular file ignores it.
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        handle = os.open(target, flags)
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise SourceRefused("fromFile reads only regular files")
        except BaseException:
            os.close(handle)
            raise
        with os.fdopen(handle, "rb") as stream:
            data = stream.read(MAX_SECRET_FILE_BYTES + 1)
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise SourceRefused(f"fromFile reads at most {MAX_SECRET_FILE_BYTES // 1024} KiB")
        return data


def ref_problems(ref: Mapping[str, Any], sources: SecretSources) -> Iterator[tuple[str, str]]:
    """(field, reason) for a plain secret reference the rules refuse."""
    name, path = ref.get("fromEnv"), ref.get("fromFile")
    reason = sources.env_refusal(name) if isinstance(name, str) else None
    if reason is not None:
        yield "fromEnv", reason
    reason = sources.file_refusal(path) if isinstance(path, str) else None
    if reason is not None:
        yield "fromFile", reason


def product_source_problems(
    spec: Mapping[str, Any], sources: SecretSources
) -> Iterator[tuple[FieldPath, str]]:
    """Every secret reference of a Product spec (its own and each lane's) the rules refuse,
    at the reference's field, naming its key."""
    yield from _map_problems(spec.get("secrets"), ("secrets",), sources)
    lanes = spec.get("lanes")
    for index, lane in enumerate(lanes if isinstance(lanes, list) else []):
        if isinstance(lane, Mapping):
            yield from _map_problems(lane.get("secrets"), ("lanes", index, "secrets"), sources)


def _map_problems(
    secrets: Any, prefix: FieldPath, sources: SecretSources
) -> Iterator[tuple[FieldPath, str]]:
    for key, ref in (secrets if isinstance(secrets, Mapping) else {}).items():
        if isinstance(ref, Mapping):
            for field, reason in ref_problems(ref, sources):
                yield (*prefix, key, field), f"secret {key}: {reason}"
