"""Settings of the GitHub provider, read from `SETPOINT_GITHUB_*` environment variables."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.http_core import DEFAULT_TIMEOUT_SECONDS

PUBLIC_WEB_URL = "https://github.com"


def web_url_for(api_url: str) -> str:
    """The web address of the GitHub an API base URL belongs to: where runners register.

    `https://api.github.com` -> `https://github.com`; GitHub Enterprise Server's
    `https://ghe.example.com/api/v3` -> `https://ghe.example.com`; GHE.com's
    `https://api.acme.ghe.com` -> `https://acme.ghe.com`; any other base (an emulator) is its
    own web address.
    """
    parts = urlsplit(api_url.rstrip("/"))
    path = parts.path.removesuffix("/api/v3")
    host = parts.netloc
    if path == parts.path and host.startswith("api."):
        host = host.removeprefix("api.")
    return f"{parts.scheme}://{host}{path}"


class GitHubConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_GITHUB_", extra="ignore")

    api_url: str = Field(
        default="https://api.github.com",
        description=(
            "GitHub REST API base URL (GitHub Enterprise Server: `https://HOST/api/v3`; "
            "runners then register at `https://HOST/...`)"
        ),
    )
    token: SecretStr | None = Field(
        default=None,
        description=(
            "token for the GitHub API; with it, `setpoint run` finds pull requests and "
            "reconciles preview lanes; never logged"
        ),
    )
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, description="per-call timeout, seconds"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="secret GitHub signs webhook deliveries with; never logged"
    )
    oidc_audience: str = Field(
        default="setpoint", description="audience a workflow's OIDC token must carry"
    )
    oidc_issuer: str = Field(
        default="https://token.actions.githubusercontent.com",
        description="issuer a workflow's OIDC token must come from",
    )
