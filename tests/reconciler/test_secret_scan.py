"""The scanner the end-to-end tests rely on finds secrets in the forms they leak in."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.secret_scan import assert_no_secrets, find_secrets

SECRET = 'p@ss w/rd+Ünï"code'


@pytest.mark.parametrize(
    "leak",
    [
        f"password={SECRET}",
        json.dumps({"env": {"PASSWORD": SECRET}}),
        f"https://db/?password={quote(SECRET, safe='')}",
        "Authorization: Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode(),
        "data=" + base64.urlsafe_b64encode(f"x{SECRET}".encode()).decode(),
    ],
)
def test_each_leak_form_is_found(leak: str) -> None:
    assert find_secrets(leak, [SECRET, "other-unrelated"]) == [SECRET]
    with pytest.raises(AssertionError) as failed:
        assert_no_secrets(leak, ["other-unrelated", SECRET])
    assert "secret #1" in str(failed.value) and SECRET not in str(failed.value)


def test_clean_text_passes() -> None:
    text = json.dumps({"env": {"PASSWORD": "hmac-sha256:0123456789abcdef"}})
    assert find_secrets(text, [SECRET]) == []
    assert_no_secrets(text, [SECRET, ""])


@given(
    secret=st.text(min_size=6, max_size=40).filter(lambda s: s.strip() == s and s),
    prefix=st.binary(max_size=5),
    suffix=st.binary(max_size=5),
)
@example(secret="000000", prefix=b"\x00" * 4, suffix=b"")  # 6 bytes at alignment 1
def test_base64_is_found_at_any_alignment(secret: str, prefix: bytes, suffix: bytes) -> None:
    blob = base64.b64encode(prefix + secret.encode() + suffix).decode()
    assert find_secrets(f"token {blob}", [secret]) == [secret]
