"""Verifying GitHub Actions OIDC tokens, so a workflow can prove which repository,
workflow and ref it runs for.

Pinned: issuer, audience and RS256 (the algorithm is never taken from the token, so
`alg: none` and HS256-with-the-public-key are refused). Every `jti` is accepted once, and a
required claim that is present but empty (`""`, blanks, null, `[]`) is refused like a
missing one: an empty `jti` would otherwise make every such token share one replay slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import httpx
import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from providers.github.jwks import JwksCache, JwksUnavailable

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
# `jti` is not in GitHub's documented minimum, but replay protection depends on it and
# GitHub always sends it.
REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "repository",
    "repository_id",
    "repository_owner_id",
    "workflow_ref",
    "ref",
    "event_name",
    "exp",
    "iat",
    "jti",
)


class OidcRejected(Exception):
    """The token is refused. `reason`: malformed, bad_algorithm, unknown_key,
    bad_signature, expired, not_yet_valid, wrong_audience, wrong_issuer,
    missing_claim:<name>, empty_claim:<name>, malformed_claims, replayed,
    jwks_unavailable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"OIDC token rejected: {reason}")


class GitHubIdentity(BaseModel):
    """Who called: the verified claims of a GitHub Actions OIDC token."""

    model_config = ConfigDict(frozen=True)

    subject: str
    repository: str
    repository_id: int
    repository_owner: str
    repository_owner_id: int
    workflow_ref: str
    ref: str
    event_name: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    audience: str
    sha: str | None = None
    ref_type: str | None = None
    environment: str | None = None
    job_workflow_ref: str | None = None
    actor: str | None = None
    run_id: str | None = None


class ReplayStore(Protocol):
    async def claim(self, jti: str, expires_at: datetime) -> bool:
        """Record `jti` until `expires_at`; False if it was already recorded (a replay).

        Must be atomic, so two concurrent uses of one token cannot both succeed.
        """
        ...


class InMemoryReplayStore:
    """jti values of this process, each kept until its token expires."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock
        self._lock = anyio.Lock()

    async def claim(self, jti: str, expires_at: datetime) -> bool:
        async with self._lock:
            now = self._clock()
            for old in [k for k, until in self._until.items() if until <= now]:
                del self._until[old]
            if jti in self._until:
                return False
            self._until[jti] = expires_at.timestamp()
            return True


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        leeway_seconds: int = 30,
        replay_store: ReplayStore | None = None,
        jwks_min_refresh_seconds: float = 60.0,
        jwks_ttl_seconds: float = 3600.0,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._audience = audience
        self._leeway = leeway_seconds
        self._clock = clock
        self._replays: ReplayStore = replay_store or InMemoryReplayStore(clock=clock)
        self._jwks = JwksCache(
            jwks_url or f"{self._issuer}/.well-known/jwks",
            http=http,
            timeout_seconds=timeout_seconds,
            min_refresh_seconds=jwks_min_refresh_seconds,
            ttl_seconds=jwks_ttl_seconds,
            clock=time.monotonic,
        )

    async def aclose(self) -> None:
        await self._jwks.aclose()

    async def verify(self, token: str) -> GitHubIdentity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise OidcRejected("malformed") from None
        if header.get("alg") != ALGORITHM:
            raise OidcRejected("bad_algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise OidcRejected("unknown_key")
        try:
            key = await self._jwks.get(kid)
        except JwksUnavailable:
            raise OidcRejected("jwks_unavailable") from None
        if key is None:
            raise OidcRejected("unknown_key")
        claims = self._decode(token, key)
        identity = _identity(claims, self._audience)
        if not await self._replays.claim(identity.jti, identity.expires_at):
            raise OidcRejected("replayed")
        return identity

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as exc:
            raise OidcRejected(_reason(exc)) from None
        empty = _first_empty_claim(claims)
        if empty is not None:
            raise OidcRejected(f"empty_claim:{empty}")
        return claims


def _first_empty_claim(claims: dict[str, Any]) -> str | None:
    """The first required claim that is present but empty: null, blank text, [] or {}."""
    for name in REQUIRED_CLAIMS:
        value = claims.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return name
        if isinstance(value, list | dict) and not value:
            return name
    return None


def _reason(exc: jwt.InvalidTokenError) -> str:
    # Order matters: several of these are subclasses of one another.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "not_yet_valid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing_claim:{exc.claim}"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong_audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong_issuer"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad_signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "bad_algorithm"
    return "malformed"


def _identity(claims: dict[str, Any], audience: str) -> GitHubIdentity:
    repository = claims["repository"]
    try:
        return GitHubIdentity(
            subject=claims["sub"],
            repository=repository,
            repository_id=claims["repository_id"],
            repository_owner=claims.get("repository_owner") or str(repository).split("/")[0],
            repository_owner_id=claims["repository_owner_id"],
            workflow_ref=claims["workflow_ref"],
            ref=claims["ref"],
            event_name=claims["event_name"],
            jti=claims["jti"],
            issued_at=datetime.fromtimestamp(claims["iat"], tz=UTC),
            expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
            audience=audience,
            sha=claims.get("sha"),
            ref_type=claims.get("ref_type"),
            environment=claims.get("environment"),
            job_workflow_ref=claims.get("job_workflow_ref"),
            actor=claims.get("actor"),
            run_id=None if claims.get("run_id") is None else str(claims["run_id"]),
        )
    except (ValidationError, TypeError, ValueError):
        raise OidcRejected("malformed_claims") from None
