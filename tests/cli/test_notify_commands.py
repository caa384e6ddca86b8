"""`setpoint notify test` and `notify list` (issue 27): a test message reaches every sink,
signed, and is recorded; a sink that refuses it fails the command; a misconfigured sink is a
one-line error that never shows its URL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from reconciler.demo.loopback import serve
from tests.support.cli import Invoke
from tests.support.notify_receiver import NotifyReceiver

KEY = "whsec-cli-test-0123456789abcdef"
TOKEN = "sink-token-cli-not-to-be-seen"


@pytest.fixture
def receiver() -> NotifyReceiver:
    return NotifyReceiver(secret=KEY)


@pytest.fixture
def sinks(receiver: NotifyReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve(receiver.app()) as base:
        url = f"signed+{base}/hook?token={TOKEN}"
        monkeypatch.setenv("SETPOINT_NOTIFY_SINKS", json.dumps({"ops": url}))
        monkeypatch.setenv("SETPOINT_NOTIFY_WEBHOOK_SECRET", KEY)
        yield url


def test_notify_test_reaches_the_sink_signed_and_is_listed(
    setpoint: Invoke, sinks: str, receiver: NotifyReceiver
) -> None:
    result = setpoint("notify", "test")
    assert result.exit_code == 0, result.output
    assert "ops: delivered" in result.stdout
    (item,) = receiver.items()
    assert item["trigger"] == "test" and receiver.received[0].signed_ok
    listed = json.loads(setpoint("notify", "list", "--output", "json").stdout)
    assert [(n["sink"], n["trigger"], n["state"]) for n in listed] == [("ops", "test", "delivered")]
    assert TOKEN not in result.output and KEY not in result.output


def test_a_sink_that_refuses_fails_the_command_with_its_answer(
    setpoint: Invoke, sinks: str, receiver: NotifyReceiver
) -> None:
    receiver.status = 400
    result = setpoint("notify", "test")
    assert result.exit_code == 1
    assert "ops: failed HTTP 400" in result.stdout and TOKEN not in result.output


def test_no_sink_or_no_key_is_a_one_line_error(
    setpoint: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SETPOINT_NOTIFY_SINKS", raising=False)
    none = setpoint("notify", "test")
    assert none.exit_code == 1 and "SETPOINT_NOTIFY_SINKS" in none.stderr
    monkeypatch.setenv("SETPOINT_NOTIFY_SINKS", json.dumps({"ops": f"signed+https://h/{TOKEN}"}))
    monkeypatch.delenv("SETPOINT_NOTIFY_WEBHOOK_SECRET", raising=False)
    unsigned = setpoint("notify", "test")
    assert unsigned.exit_code == 1 and "SETPOINT_NOTIFY_WEBHOOK_SECRET" in unsigned.stderr
    assert TOKEN not in unsigned.output
