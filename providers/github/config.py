"""Settings of the GitHub provider, read from `SETPOINT_GITHUB_*` environment variables."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.http_core import DEFAULT_TIMEOUT_SECONDS


class GitHubConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_GITHUB_", extra="ignore")

    api_url: str = "https://api.github.com"
    token: SecretStr | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    webhook_secret: SecretStr | None = None
    oidc_audience: str = "setpoint"
    oidc_issuer: str = "https://token.actions.githubusercontent.com"
