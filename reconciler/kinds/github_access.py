"""The preflight of the kinds that need GitHub (previews, runners): is the token accepted?

A refused token is `credentials_refused`, as a refused Dokploy key is: a gate on the lanes
of those kinds, never retried by backoff, cleared on the first pass after the token works
again. Any other failure (GitHub down, a timeout) is a preflight failure time may mend.
"""

from __future__ import annotations

from providers.github.api import GitHubApi
from providers.github.errors import GitHubError, GitHubUnauthorized
from reconciler.kinds.base import PreflightFailure


async def github_preflight(github: GitHubApi | None) -> PreflightFailure | None:
    if github is None:  # the kind says what it cannot do without GitHub when it observes
        return None
    try:
        await github.check_token()
    except GitHubUnauthorized as exc:
        return PreflightFailure(
            f"GitHub refused the token (SETPOINT_GITHUB_TOKEN): {exc.message}",
            credentials_refused=True,
        )
    except GitHubError as exc:
        return PreflightFailure(f"GitHub preflight failed: {exc}")
    return None
