"""Connection settings for Dokploy, read from `SETPOINT_DOKPLOY_*` environment variables."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.http_core import DEFAULT_TIMEOUT_SECONDS


class DokployConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_DOKPLOY_", extra="ignore")

    url: str = Field(
        description="Dokploy base URL (http:// or https://), with or without the trailing /api"
    )
    api_key: SecretStr = Field(description="Dokploy API key, sent as x-api-key; never logged")
    timeout_seconds: float = Field(
        DEFAULT_TIMEOUT_SECONDS, gt=0, description="per-call timeout, seconds"
    )
    retry_attempts: int = Field(
        3,
        ge=1,
        description="attempts for calls that are safe to repeat; a configuration error is never retried",
    )
    retry_backoff_base: float = Field(0.5, ge=0, description="backoff multiplier, seconds")
    retry_backoff_max: float = Field(5.0, ge=0, description="cap on one backoff wait, seconds")
    retry_after_cap: float = Field(30.0, ge=0, description="cap on honouring Retry-After, seconds")
    deploy_parallelism: int = Field(
        1,
        ge=1,
        description="deploys Setpoint keeps in one Dokploy server's build queue at once; "
        "Dokploy v0.30 builds one at a time per server, so more only wait in its queue",
    )

    @field_validator("url")
    @classmethod
    def _usable_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{url!r} is not a Dokploy address: it needs http:// or https:// and a host"
            )
        return url.strip()
