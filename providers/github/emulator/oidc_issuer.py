"""A GitHub Actions OIDC issuer for tests: a JWKS and tokens with chosen claims.

Besides good tokens it mints the bad ones a verifier must refuse: `alg: none`, HS256
signed with the issuer's public key as the HMAC secret, tokens from an unknown key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_ISSUER = "http://github-emulator.local"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcIssuer:
    def __init__(
        self, issuer: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.issuer = issuer
        self._clock = clock
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._generation = 0
        self.current_kid = self.rotate_key()

    def rotate_key(self, *, keep_old: bool = True) -> str:
        """Sign with a new key from now on (GitHub rotates too); returns its kid."""
        self._generation += 1
        kid = f"emulator-key-{self._generation}"
        if not keep_old:
            self._keys.clear()
        self._keys[kid] = _new_key()
        self.current_kid = kid
        return kid

    def issuer_for(self, base_url: str | None = None) -> str:
        return (self.issuer or base_url or DEFAULT_ISSUER).rstrip("/")

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def discovery(self, base_url: str | None = None) -> dict[str, Any]:
        issuer = self.issuer_for(base_url)
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": sorted(self.default_claims(issuer)),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def default_claims(self, issuer: str, ttl_seconds: int = 300) -> dict[str, Any]:
        now = int(self._clock())
        return {
            "iss": issuer,
            "aud": "setpoint",
            "sub": "repo:acme/shop:ref:refs/heads/main",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "repository": "acme/shop",
            "repository_id": "101",
            "repository_owner": "acme",
            "repository_owner_id": "100",
            "repository_visibility": "private",
            "workflow_ref": "acme/shop/.github/workflows/build.yml@refs/heads/main",
            "job_workflow_ref": "acme/shop/.github/workflows/build.yml@refs/heads/main",
            "workflow": "build",
            "ref": "refs/heads/main",
            "ref_type": "branch",
            "sha": "0" * 40,
            "event_name": "push",
            "actor": "octocat",
            "actor_id": "1",
            "run_id": "1",
            "run_number": "1",
            "run_attempt": "1",
            "runner_environment": "self-hosted",
        }

    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        alg: str = "RS256",
        ttl_seconds: int = 300,
        omit: Iterable[str] = (),
        issuer: str | None = None,
        foreign_key: bool = False,
    ) -> str:
        """A token with GitHub's usual claims, overridden by `claims`, minus `omit`.

        alg "RS256" signs with the issuer key (or, with `foreign_key`, a key nobody
        published); "none" leaves it unsigned; "HS256" uses the public key PEM as the
        HMAC secret (the classic algorithm-confusion attack).
        """
        payload = {**self.default_claims(self.issuer_for(issuer), ttl_seconds), **(claims or {})}
        for name in omit:
            payload.pop(name, None)
        header_kid = kid or self.current_kid
        if alg == "none":
            return self._raw(payload, {"alg": "none", "typ": "JWT", "kid": header_kid}, b"")
        if alg == "HS256":
            secret = self._public_pem(self.current_kid)
            head = {"alg": "HS256", "typ": "JWT", "kid": header_kid}
            return self._raw(payload, head, secret)
        if alg != "RS256":
            raise ValueError(f"unsupported alg {alg!r}")
        key = _new_key() if foreign_key else self._keys[self.current_kid]
        return jwt.encode(
            payload, key, algorithm="RS256", headers={"kid": header_kid, "typ": "JWT"}
        )

    def _public_pem(self, kid: str) -> bytes:
        return (
            self._keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @staticmethod
    def _raw(payload: dict[str, Any], header: dict[str, Any], hmac_key: bytes) -> str:
        # Built by hand: PyJWT rightly refuses to produce these tokens.
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
        )
        if not hmac_key:
            return signing_input + "."
        digest = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(digest)}"
