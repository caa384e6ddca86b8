"""`GitHubClient`: the one object the reconciler uses to talk to GitHub."""

from __future__ import annotations

from typing import Any

import httpx

from providers.github.comments import CommentsApi
from providers.github.config import GitHubConfig
from providers.github.deployments import DeploymentsApi
from providers.github.pulls import PullsApi
from providers.github.runners import RunnersApi


class GitHubClient(PullsApi, CommentsApi, DeploymentsApi, RunnersApi):
    """Async GitHub REST client. Use as `async with GitHubClient(url, token) as gh: ...`."""

    async def __aenter__(self) -> GitHubClient:
        return self

    @classmethod
    def from_config(
        cls,
        config: GitHubConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> GitHubClient:
        if config.token is None:
            raise ValueError("SETPOINT_GITHUB_TOKEN is not set")
        return cls(
            config.api_url,
            config.token.get_secret_value(),
            timeout=config.timeout_seconds,
            transport=transport,
            **options,
        )
