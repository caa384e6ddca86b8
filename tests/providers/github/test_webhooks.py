"""Webhook deliveries: only correctly signed, bounded, well-formed bodies get through, and
a redelivery is recognised as one."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from providers.github.emulator import EmulatorState, send_webhook
from providers.github.webhooks import (
    InMemoryDeliveryStore,
    VerifiedDelivery,
    WebhookRejected,
    WebhookVerifier,
    sign,
)
from tests.providers.github.contract import schema_errors

SECRET = "webhook-secret-for-tests"
Mutation = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def _headers(body: bytes, *, secret: str = SECRET, delivery: str = "d-1") -> dict[str, str]:
    return {
        "X-Hub-Signature-256": sign(secret, body),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
    }


def test_a_correctly_signed_delivery_is_accepted() -> None:
    body = json.dumps({"action": "opened", "number": 1}).encode()
    delivery = WebhookVerifier(SECRET).verify(_headers(body), body)
    assert (delivery.event, delivery.delivery_id, delivery.action) == (
        "pull_request",
        "d-1",
        "opened",
    )
    assert delivery.redelivery is False


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: ({**h, "X-Hub-Signature-256": sign("other-secret", b)}, b), "bad_signature"),
        (lambda h, b: (h, b + b" "), "bad_signature"),  # body changed after signing
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha1=abc"}, b), "bad_signature"),
        (
            lambda h, b: ({k: v for k, v in h.items() if "Signature" not in k}, b),
            "missing_signature",
        ),
        (
            lambda h, b: ({k: v for k, v in h.items() if "Delivery" not in k}, b),
            "missing_delivery_id",
        ),
        (lambda h, b: ({k: v for k, v in h.items() if "Event" not in k}, b), "missing_event"),
    ],
)
def test_deliveries_that_cannot_be_trusted_are_refused(mutate: Mutation, reason: str) -> None:
    body = b'{"action":"opened"}'
    headers, sent = mutate(_headers(body), body)
    with pytest.raises(WebhookRejected) as refused:
        WebhookVerifier(SECRET).verify(headers, sent)
    assert refused.value.reason == reason


def test_an_oversized_body_is_refused_before_anything_else() -> None:
    body = b"{" + b" " * 2048 + b"}"
    with pytest.raises(WebhookRejected) as refused:
        WebhookVerifier(SECRET, max_body_bytes=1024).verify({}, body)
    assert refused.value.reason == "body_too_large"


def test_a_signed_body_that_is_not_a_json_object_is_malformed() -> None:
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(WebhookRejected) as refused:
            WebhookVerifier(SECRET).verify(_headers(body), body)
        assert refused.value.reason == "malformed"


def test_a_redelivery_is_recognised_by_its_delivery_id() -> None:
    verifier = WebhookVerifier(SECRET)
    body = b'{"action":"labeled"}'
    first = verifier.verify(_headers(body, delivery="abc"), body)
    again = verifier.verify(_headers(body, delivery="abc"), body)
    other = verifier.verify(_headers(body, delivery="def"), body)
    assert (first.redelivery, again.redelivery, other.redelivery) == (False, True, False)


def test_the_delivery_store_is_bounded() -> None:
    store = InMemoryDeliveryStore(max_entries=2)
    for delivery in ("a", "b", "c"):
        store.remember(delivery)
    assert (store.seen("a"), store.seen("b"), store.seen("c")) == (False, True, True)


def test_the_secret_does_not_show_in_the_verifiers_repr() -> None:
    assert SECRET not in repr(WebhookVerifier(SECRET))


def _receiver(verifier: WebhookVerifier, received: list[VerifiedDelivery]) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/github")
    async def hook(request: Request) -> JSONResponse:
        try:
            delivery = verifier.verify(request.headers, await request.body())
        except WebhookRejected as exc:
            return JSONResponse({"refused": exc.reason}, status_code=401)
        received.append(delivery)
        return JSONResponse({"ok": True}, status_code=202)

    return app


async def test_the_emulator_sends_signed_deliveries_the_verifier_accepts(
    github_state: EmulatorState,
) -> None:
    received: list[VerifiedDelivery] = []
    receiver = httpx.ASGITransport(app=_receiver(WebhookVerifier(SECRET), received))
    pr = github_state.open_pull("acme", "shop", labels=["preview"])
    payload = github_state.pull_request_event("acme", "shop", pr.number, "labeled", label="preview")

    ok = await send_webhook(
        "http://receiver/hooks/github",
        "pull_request",
        payload,
        SECRET,
        delivery_id="x-1",
        transport=receiver,
    )
    again = await send_webhook(
        "http://receiver/hooks/github",
        "pull_request",
        payload,
        SECRET,
        delivery_id="x-1",
        transport=receiver,
    )
    forged = await send_webhook(
        "http://receiver/hooks/github",
        "pull_request",
        payload,
        "not-the-secret",
        transport=receiver,
    )

    assert (ok.status_code, again.status_code, forged.status_code) == (202, 202, 401)
    assert [d.redelivery for d in received] == [False, True]
    assert received[0].payload["label"]["name"] == "preview"
    assert schema_errors(received[0].payload, "webhook-pull-request-labeled") == []


async def test_the_emulator_sends_webhooks_when_asked_over_http(
    github_emulator: FastAPI, github_state: EmulatorState
) -> None:
    received: list[VerifiedDelivery] = []
    github_state.webhook_transport = httpx.ASGITransport(
        app=_receiver(WebhookVerifier(SECRET), received)
    )
    github_state.open_pull("acme", "shop")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=github_emulator), base_url="http://gh"
    ) as control:
        response = await control.post(
            "/__emulator/webhooks/pull_request",
            json={
                "url": "http://receiver/hooks/github",
                "secret": SECRET,
                "owner": "acme",
                "repo": "shop",
                "number": 1,
                "action": "opened",
            },
        )
    assert response.json() == {"status": 202}
    assert received[0].action == "opened"
