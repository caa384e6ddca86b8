"""GitHub Actions OIDC: a good token yields the identity; every forged, stale, misdirected,
incomplete or replayed token is refused with a reason that says which."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from providers.github.emulator import EmulatorState
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import (
    REQUIRED_CLAIMS,
    GitHubIdentity,
    InMemoryReplayStore,
    OidcRejected,
    OidcVerifier,
)

AUDIENCE = "setpoint"


@pytest.fixture
async def jwks_http(github_emulator: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=github_emulator)) as http:
        yield http


@pytest.fixture
def verifier(jwks_http: httpx.AsyncClient) -> OidcVerifier:
    return OidcVerifier(DEFAULT_ISSUER, AUDIENCE, http=jwks_http)


async def _reason(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(OidcRejected) as refused:
        await verifier.verify(token)
    return refused.value.reason


async def test_a_good_token_yields_the_identity(
    verifier: OidcVerifier, github_state: EmulatorState
) -> None:
    token = github_state.mint_oidc_token(
        {"repository": "acme/shop", "repository_id": "42", "ref": "refs/heads/main"}
    )

    identity = await verifier.verify(token)

    assert isinstance(identity, GitHubIdentity)
    assert (identity.repository, identity.repository_id, identity.repository_owner) == (
        "acme/shop",
        42,
        "acme",
    )
    assert identity.workflow_ref.startswith("acme/shop/.github/workflows/")
    assert identity.expires_at > datetime.now(UTC)
    with pytest.raises(Exception, match="frozen"):
        identity.repository = "other/repo"  # type: ignore[misc]


# Time claims below are seconds from the moment the test runs, not from collection: under
# load a run reached this test more than 600 s after collecting it, and "not yet valid" was.
TIME_CLAIMS = ("exp", "iat", "nbf")


@pytest.mark.parametrize(
    ("claims", "options", "reason"),
    [
        ({"exp": -120, "iat": -420}, {}, "expired"),
        ({"nbf": 600, "iat": 600}, {"ttl_seconds": 900}, "not_yet_valid"),
        ({"aud": "someone-else"}, {}, "wrong_audience"),
        ({"iss": "https://token.actions.example.evil"}, {}, "wrong_issuer"),
        ({}, {"foreign_key": True, "kid": "not-published"}, "unknown_key"),
        ({}, {"foreign_key": True}, "bad_signature"),  # a published kid, the wrong key
        ({}, {"alg": "none"}, "bad_algorithm"),
        ({}, {"alg": "HS256"}, "bad_algorithm"),  # public key used as HMAC secret
        ({"repository_id": "not-a-number"}, {}, "malformed_claims"),
    ],
)
async def test_bad_tokens_are_refused_with_a_clear_reason(
    verifier: OidcVerifier,
    github_state: EmulatorState,
    claims: dict[str, object],
    options: dict[str, Any],
    reason: str,
) -> None:
    now = int(time.time())  # PyJWT checks the times against the wall clock
    timed = {
        k: now + v if k in TIME_CLAIMS and isinstance(v, int) else v for k, v in claims.items()
    }
    token = github_state.mint_oidc_token(timed, **options)
    assert await _reason(verifier, token) == reason


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_a_token_missing_a_required_claim_is_refused(
    verifier: OidcVerifier, github_state: EmulatorState, claim: str
) -> None:
    token = github_state.mint_oidc_token(omit=[claim])
    assert await _reason(verifier, token) == f"missing_claim:{claim}"


# iss and aud are compared with pinned values, exp and iat are numbers PyJWT checks itself.
@pytest.mark.parametrize(
    "claim", [c for c in REQUIRED_CLAIMS if c not in ("iss", "aud", "exp", "iat")]
)
@pytest.mark.parametrize("empty", ["", "   ", None])
async def test_a_required_claim_present_but_empty_is_refused(
    verifier: OidcVerifier, github_state: EmulatorState, claim: str, empty: str | None
) -> None:
    token = github_state.mint_oidc_token({claim: empty})
    assert await _reason(verifier, token) in (f"empty_claim:{claim}", f"missing_claim:{claim}")


async def test_two_tokens_with_an_empty_jti_are_both_refused_not_one_replayed(
    verifier: OidcVerifier, github_state: EmulatorState
) -> None:
    first = github_state.mint_oidc_token({"jti": ""})
    second = github_state.mint_oidc_token({"jti": ""})

    assert await _reason(verifier, first) == "empty_claim:jti"
    assert await _reason(verifier, second) == "empty_claim:jti"


async def test_a_replayed_token_is_refused(
    verifier: OidcVerifier, github_state: EmulatorState
) -> None:
    token = github_state.mint_oidc_token()
    await verifier.verify(token)
    assert await _reason(verifier, token) == "replayed"


async def test_a_token_just_past_expiry_is_within_the_small_leeway(
    verifier: OidcVerifier, github_state: EmulatorState
) -> None:
    now = int(time.time())
    token = github_state.mint_oidc_token({"exp": now - 10, "iat": now - 300})
    assert (await verifier.verify(token)).repository == "acme/shop"


async def test_garbage_is_malformed(verifier: OidcVerifier) -> None:
    assert await _reason(verifier, "not.a.jwt") == "malformed"


async def test_a_rotated_signing_key_is_picked_up(
    jwks_http: httpx.AsyncClient, github_state: EmulatorState
) -> None:
    verifier = OidcVerifier(DEFAULT_ISSUER, AUDIENCE, http=jwks_http, jwks_min_refresh_seconds=0)
    await verifier.verify(github_state.mint_oidc_token())
    github_state.oidc.rotate_key()

    identity = await verifier.verify(github_state.mint_oidc_token())

    assert identity.subject.startswith("repo:acme/shop")


async def test_a_flood_of_unknown_key_ids_does_not_hammer_the_issuer(
    github_emulator: FastAPI, github_state: EmulatorState
) -> None:
    fetches: list[str] = []
    inner = httpx.ASGITransport(app=github_emulator)

    async def counting(request: httpx.Request) -> httpx.Response:
        fetches.append(request.url.path)
        return await inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(counting)) as http:
        verifier = OidcVerifier(DEFAULT_ISSUER, AUDIENCE, http=http)
        for n in range(25):
            token = github_state.mint_oidc_token(kid=f"made-up-{n}", foreign_key=True)
            assert await _reason(verifier, token) == "unknown_key"

    assert fetches == ["/.well-known/jwks"]


async def test_an_unreachable_jwks_refuses_rather_than_accepts(
    github_state: EmulatorState,
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        verifier = OidcVerifier(DEFAULT_ISSUER, AUDIENCE, http=http)
        assert await _reason(verifier, github_state.mint_oidc_token()) == "jwks_unavailable"


async def test_replay_memory_forgets_a_jti_once_its_token_has_expired() -> None:
    now = [1_000.0]
    store = InMemoryReplayStore(clock=lambda: now[0])
    expires = datetime.fromtimestamp(1_100, tz=UTC)
    assert await store.claim("j-1", expires) is True
    assert await store.claim("j-1", expires) is False
    now[0] = 1_200.0
    assert await store.claim("j-2", expires) is True
    assert "j-1" not in store._until  # purged, so memory stays bounded by token lifetime


async def test_discovery_document_points_at_the_jwks(jwks_http: httpx.AsyncClient) -> None:
    response = await jwks_http.get("http://127.0.0.1:3001/.well-known/openid-configuration")
    document = response.json()
    assert document["issuer"] == "http://127.0.0.1:3001"
    assert document["jwks_uri"] == "http://127.0.0.1:3001/.well-known/jwks"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
