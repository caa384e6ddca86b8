"""Every token the API must refuse is refused, and every refusal is audited: forged,
expired, replayed, for another audience, or from a workflow with no grant for what it asks."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.operations import Operation
from reconciler.records.operator_tokens import revoke
from reconciler.records.operator_tokens import verify as verify_operator
from reconciler.runtime import Runtime, utcnow
from tests.api.conftest import AUDIENCE, Mint, add_grant, audit_events, bearer

RECONCILE = "/v1/lanes/product/shop/testing/reconcile"


def no_operations(engine: Engine) -> bool:
    with session_scope(engine) as session:
        return session.execute(sa.select(Operation)).first() is None


def assert_refused_and_audited(
    answer: httpx.Response, engine: Engine, status: int, reason: str
) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    reasons = [r.data["reason"] for r in audit_events(engine, AuditEvent.api_denied)]
    assert reason in reasons, reasons
    assert no_operations(engine)


@pytest.mark.parametrize(
    ("claims", "options", "reason"),
    [
        ({}, {"foreign_key": True}, "oidc_bad_signature"),
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 420}, {}, "oidc_expired"),
        ({"aud": "someone-else"}, {}, "oidc_wrong_audience"),
        ({}, {"alg": "none"}, "oidc_bad_algorithm"),
    ],
)
async def test_a_bad_token_is_refused_and_audited(
    client: httpx.AsyncClient,
    engine: Engine,
    mint: Mint,
    claims: dict[str, Any],
    options: dict[str, Any],
    reason: str,
) -> None:
    add_grant(engine, "*")

    answer = await client.post(RECONCILE, headers=bearer(mint(claims, **options)))

    assert_refused_and_audited(answer, engine, 401, reason)
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_replayed_token_is_refused_and_audited(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*")
    token = mint()
    first = await client.post(RECONCILE, headers=bearer(token))
    assert first.status_code == 202

    replayed = await client.post("/v1/lanes/product/shop/prod/reconcile", headers=bearer(token))

    assert replayed.status_code == 401
    [denied] = audit_events(engine, AuditEvent.api_denied)
    assert denied.data["reason"] == "oidc_replayed"


@pytest.mark.parametrize(
    ("grant", "body", "status", "reason"),
    [
        (None, {}, 403, "no_grant"),
        ({"lanes": "product:ledger/*"}, {}, 403, "no_grant"),
        ({"lanes": "product:shop/*", "repository_id": 999}, {}, 403, "no_grant"),
        ({"lanes": "product:shop/*", "ref": "refs/heads/release-*"}, {}, 403, "no_grant"),
        ({"lanes": "product:shop/*", "environment": "production"}, {}, 403, "no_grant"),
        ({"lanes": "product:shop/*"}, {"apply": True}, 403, "apply_not_granted"),
    ],
    ids=["no-grant", "other-lane", "other-repo", "other-ref", "env-required", "plan-only"],
)
async def test_a_caller_without_a_grant_for_the_request_is_refused_and_audited(
    client: httpx.AsyncClient,
    engine: Engine,
    mint: Mint,
    grant: dict[str, Any] | None,
    body: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    if grant is not None:
        add_grant(engine, **grant)

    answer = await client.post(RECONCILE, headers=bearer(mint()), json=body)

    assert_refused_and_audited(answer, engine, status, reason)
    [denied] = audit_events(engine, AuditEvent.api_denied)
    assert denied.actor.startswith("workflow:acme/shop:") and denied.lane == "product:shop/testing"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_token"),
        ({"Authorization": "Bearer not-a-jwt"}, "oidc_malformed"),
        ({"Authorization": "Bearer spt_made-up-operator-token"}, "bad_operator_token"),
    ],
)
async def test_a_missing_or_garbled_token_is_refused_and_audited(
    client: httpx.AsyncClient, engine: Engine, headers: dict[str, str], reason: str
) -> None:
    answer = await client.post(RECONCILE, headers=headers)

    assert_refused_and_audited(answer, engine, 401, reason)


OPERATOR_ROUTES = [("GET", "/v1/lanes"), ("POST", "/v1/plans/plan_x/apply")]


@pytest.mark.parametrize(("method", "path"), OPERATOR_ROUTES)
async def test_operator_endpoints_refuse_anything_but_a_live_operator_token(
    client: httpx.AsyncClient,
    engine: Engine,
    mint: Mint,
    operator_token: str,
    method: str,
    path: str,
) -> None:
    add_grant(engine, "*", allow_apply=True)  # a grant is not an operator token
    with session_scope(engine) as session:
        identity = verify_operator(session, operator_token)
        assert identity is not None
    revoked = operator_token

    without = await client.request(method, path)
    workflow = await client.request(method, path, headers=bearer(mint()))
    with session_scope(engine) as session:
        revoke(session, identity.token_id, utcnow())
    after_revoke = await client.request(method, path, headers=bearer(revoked))

    assert [without.status_code, workflow.status_code, after_revoke.status_code] == [401, 403, 401]
    reasons = [r.data["reason"] for r in audit_events(engine, AuditEvent.api_denied)]
    assert reasons == ["missing_token", "operator_token_required", "bad_operator_token"]


async def test_an_operator_token_reads_the_lanes(
    client: httpx.AsyncClient, engine: Engine, mint: Mint, operator_token: str
) -> None:
    add_grant(engine, "product:shop/*")
    await client.post(RECONCILE, headers=bearer(mint()))

    answer = await client.get("/v1/lanes", headers=bearer(operator_token))

    assert answer.status_code == 200
    [lane] = answer.json()["lanes"]
    assert lane["lane"] == "product:shop/testing"
    assert lane["queue"]["priority"] == "workflow" and lane["queue"]["claimed"] is False
    one = await client.get("/v1/lanes/product/shop/testing", headers=bearer(mint()))
    assert one.status_code == 200 and one.json()["lane"] == "product:shop/testing"


async def test_keys_that_cannot_be_fetched_are_a_503_not_the_callers_fault(
    api_runtime: Runtime, github_emulator: FastAPI, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "*")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=github_emulator)) as jwks:
        verifier = OidcVerifier(
            DEFAULT_ISSUER, AUDIENCE, jwks_url=f"{DEFAULT_ISSUER}/no-keys-here", http=jwks
        )
        app = create_service(api_runtime, verifier=verifier)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as http:
            answer = await http.post(RECONCILE, headers=bearer(mint()))

    assert_refused_and_audited(answer, engine, 503, "oidc_jwks_unavailable")
