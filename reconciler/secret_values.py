"""Secret values, resolved from references at plan or apply time; they never leave as text.

Every value resolved here is remembered in a process-wide registry, so the audit log can
refuse records that carry one and log output can be redacted (Invariant 7).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
from collections.abc import Mapping
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.errors import SecretUnavailable

if TYPE_CHECKING:
    # Only an annotation here. Every CLI command's logging setup imports this module, and
    # importing desired_state builds all of its pydantic models: `plan --help` need not.
    from desired_state.secret_sources import SecretSources
    from desired_state.secrets import SecretRef

REDACTED = "***"
# A short value (say "on" or "1") found inside longer text is far more likely a coincidence
# than a leak, so below this length a value only counts when it stands alone as a word.
_MIN_SUBSTRING_LENGTH = 6


class SecretValue:
    """A resolved secret. Printing, logging or formatting it shows `SecretValue(***)`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({REDACTED})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))

    def __reduce__(self) -> Any:
        # Pickling would write the value to wherever the pickle goes (a queue, a cache file).
        raise TypeError("SecretValue cannot be pickled")


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not value:
            return
        with self._lock:
            if value not in self._values:
                self._values = self._values | {value}
                self._pattern = None

    def values(self) -> frozenset[str]:
        return self._values

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._values:
            # Longest first, so a secret that contains another is redacted whole.
            alternatives = [
                re.escape(v)
                if len(v) >= _MIN_SUBSTRING_LENGTH
                else rf"(?<![\w]){re.escape(v)}(?![\w])"
                for v in sorted(self._values, key=len, reverse=True)
            ]
            pattern = self._pattern = re.compile("|".join(alternatives))
        return pattern


_registry = _Registry()


def register_secret(value: str | SecretValue) -> None:
    """Remember a value obtained some other way (a provider token, say) as a secret."""
    _registry.add(value.reveal() if isinstance(value, SecretValue) else value)


def known_secret_values() -> frozenset[str]:
    return _registry.values()


def forget_all_secrets() -> None:
    """Empty the registry; for tests that need a clean process state."""
    _registry.clear()


def contains_secret(text: str) -> bool:
    pattern = _registry.pattern()
    return pattern is not None and pattern.search(text) is not None


def redact(text: str) -> str:
    pattern = _registry.pattern()
    return text if pattern is None else pattern.sub(REDACTED, text)


class StoreReader(Protocol):
    def get(self, name: str) -> str | None: ...


def resolve(
    ref: SecretRef,
    *,
    sources: SecretSources | None = None,
    environ: Mapping[str, str] | None = None,
    store: StoreReader | None = None,
) -> SecretValue:
    """Read the value a reference points at, where `sources` (the operator's rules; None:
    every setting at its default) let it read; register it so it can be kept out of output."""
    if sources is None:
        from reconciler.secret_sources import default_sources

        sources = default_sources()
    description = ref.describe()
    if ref.from_store is not None:
        value = _from_store(description, ref.from_store, store)
    elif ref.from_env is not None:
        value = _from_env(description, ref.from_env, sources, environ)
    else:
        assert ref.from_file is not None
        value = _from_file(description, ref.from_file, sources)
    if not value:
        raise SecretUnavailable(description, "value is empty")
    _registry.add(value)
    return SecretValue(value)


def _from_env(
    description: str, name: str, sources: SecretSources, environ: Mapping[str, str] | None
) -> str:
    refusal = sources.env_refusal(name)
    if refusal is not None:
        raise SecretUnavailable(description, refusal)
    env = os.environ if environ is None else environ
    if name not in env:
        raise SecretUnavailable(description, "environment variable is not set")
    return env[name]


def _from_file(description: str, path: str, sources: SecretSources) -> str:
    from desired_state.secret_sources import SourceRefused

    try:
        value = sources.read_file(path).decode("utf-8")
    except SourceRefused as refused:
        raise SecretUnavailable(description, str(refused)) from None
    except FileNotFoundError:
        raise SecretUnavailable(description, "file does not exist") from None
    except PermissionError:
        raise SecretUnavailable(description, "file is not readable") from None
    except UnicodeDecodeError:
        # The decode error's own message quotes the offending bytes.
        raise SecretUnavailable(description, "file is not UTF-8 text") from None
    except OSError as error:
        raise SecretUnavailable(description, error.strerror or type(error).__name__) from None
    if value.endswith("\n"):
        value = value[:-2] if value.endswith("\r\n") else value[:-1]
    return value


def _from_store(description: str, name: str, store: StoreReader | None) -> str:
    if store is None:
        raise SecretUnavailable(
            description, "no secret store is configured (set SETPOINT_SECRET_STORE_KEY)"
        )
    try:
        value = store.get(name)
    except Exception as exc:  # the store's own errors carry no value; keep their words
        raise SecretUnavailable(description, str(exc)) from None
    if value is None:
        raise SecretUnavailable(description, "not in the secret store (`setpoint secrets set`)")
    return value


def fingerprint(salt: str, value: SecretValue | str) -> str:
    """A salted digest that shows a secret changed without letting anyone guess it."""
    raw = value.reveal() if isinstance(value, SecretValue) else value
    digest = hmac.new(salt.encode(), raw.encode(), sha256).hexdigest()
    return "hmac-sha256:" + digest[:16]


class RedactingFilter(logging.Filter):
    """Replaces every known secret value in a log record with `***` before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _registry.pattern() is None:
            return True
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction() -> int:
    """Attach the filter to the root logger's handlers; returns how many handlers have it."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    return len(root.handlers)
