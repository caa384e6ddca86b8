"""Notification sinks: apprise delivers through its own plugins (json:// to a loopback
receiver here), the signed webhook signs the exact body, and failures say whether trying
again may help."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from providers.notify.sinks import (
    AppriseSink,
    Message,
    NotDelivered,
    NotificationItem,
    SignedWebhookSink,
    build_sinks,
    sign,
)
from reconciler.demo.loopback import free_port, serve
from tests.support.notify_receiver import NotifyReceiver

MESSAGE = Message(
    "m1",
    (
        NotificationItem(
            "lane_degraded", "product:shop/testing", "shop/testing: Degraded", "503", None
        ),
    ),
)


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"id":"m1"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign("k", body) == f"sha256={expected}"


async def test_apprise_delivers_to_a_json_sink() -> None:
    receiver = NotifyReceiver(secret="unused")
    with serve(receiver.app()) as base:
        port = base.rsplit(":", 1)[1]
        sink = AppriseSink("plain", f"json://127.0.0.1:{port}/apprise", timeout=5.0)
        assert await sink.send(MESSAGE) == {"apprise": "delivered"}
    (posted,) = receiver.plain
    assert posted["title"] == "shop/testing: Degraded" and "503" in posted["message"]


async def test_apprise_down_is_transient_and_an_unknown_url_is_not() -> None:
    down = AppriseSink("down", f"json://127.0.0.1:{free_port()}/x", timeout=5.0)
    with pytest.raises(NotDelivered) as refused:
        await down.send(MESSAGE)
    assert refused.value.transient
    with pytest.raises(NotDelivered) as unknown:
        await AppriseSink("bad", "nosuchscheme://x").send(MESSAGE)
    assert not unknown.value.transient


async def test_the_webhook_sends_the_items_and_4xx_is_not_transient() -> None:
    receiver = NotifyReceiver(secret="k")
    with serve(receiver.app()) as base:
        sink = SignedWebhookSink("hook", f"{base}/hook", "k")
        answer = await sink.send(MESSAGE)
        assert answer["status"] == 200
        assert receiver.received[0].signed_ok
        assert receiver.items()[0]["lane"] == "product:shop/testing"
        receiver.status = 404
        with pytest.raises(NotDelivered) as refused:
            await sink.send(MESSAGE)
        assert not refused.value.transient
        receiver.status = 503
        with pytest.raises(NotDelivered) as down:
            await sink.send(MESSAGE)
        assert down.value.transient


def test_sinks_are_built_by_scheme_and_never_show_their_url() -> None:
    sinks = build_sinks(
        {"a": "ntfy://topic-secret", "b": "signed+https://h/p"}, webhook_secret="k", timeout=3
    )
    assert [type(s).__name__ for s in sinks] == ["AppriseSink", "SignedWebhookSink"]
    assert "topic-secret" not in repr(sinks) and "'k'" not in repr(sinks)
    with pytest.raises(ValueError, match="SETPOINT_NOTIFY_WEBHOOK_SECRET") as missing:
        build_sinks({"b": "signed+https://h/secret-path"}, webhook_secret=None, timeout=3)
    assert "secret-path" not in str(missing.value)
    assert json.dumps(MESSAGE.document())
