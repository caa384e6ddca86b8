"""Find secret values in text (plans, audit exports, logs, API bodies) in the forms they leak in.

A value can leak as itself, JSON-escaped, URL-encoded, or base64-encoded (an Authorization
header, a Kubernetes-style secret, a data: URL). Base64 inside a longer string is shifted
by what precedes it, so the value is looked for at each of the three byte alignments.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

# Shorter cores match by chance in any long base64 blob; 7 base64 characters are 42 bits.
_MIN_BASE64_CORE = 7  # a 6-byte secret leaves 7 whole characters at two alignments


def _base64_cores(raw: bytes) -> set[str]:
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        # Keep only characters whose six bits all come from the value itself.
        start = -(-8 * shift // 6)
        end = 8 * (shift + len(raw)) // 6
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # URL-safe alphabet
    return cores


def encoded_forms(secret: str) -> dict[str, str]:
    """Each form the secret might take in output, named, keyed by the text to look for."""
    raw = secret.encode("utf-8")
    forms = {
        secret: "plain",
        json.dumps(secret)[1:-1]: "JSON-escaped",
        json.dumps(secret, ensure_ascii=False)[1:-1]: "JSON-escaped",
        quote(secret, safe=""): "URL-encoded",
        quote_plus(secret, safe=""): "URL-encoded",
        quote(secret): "URL-encoded",
    }
    for core in _base64_cores(raw):
        forms.setdefault(core, "base64")
    return {text: name for text, name in forms.items() if text}


def find_secrets(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that occur in `text`, in any of the encoded forms, in the order given."""
    found = []
    for secret in secrets:
        if secret and any(form in text for form in encoded_forms(secret)):
            found.append(secret)
    return found


def assert_no_secrets(text: str, secrets: Iterable[str]) -> None:
    """Fail naming which secret (by position) leaked and in what form, never its value."""
    leaks = []
    for index, secret in enumerate(secrets):
        if not secret:
            continue
        forms = sorted({name for form, name in encoded_forms(secret).items() if form in text})
        if forms:
            leaks.append(f"secret #{index} ({len(secret)} chars) found {', '.join(forms)}")
    assert not leaks, "; ".join(leaks)
