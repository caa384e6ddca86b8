"""Deploy and wait: Dokploy's deploy call returns no deployment id, so we find it ourselves.

Before deploying we record which deployments exist; afterwards we poll the service's
deployment list (newest first) for one we have not seen, and wait for it to reach a
terminal status. If the deploy call itself times out the build may still have been
queued, so we keep polling rather than deploy a second time.

Polls start fast and back off: a quick build is seen within a fraction of a second, and a
long one costs no more requests than polling at `poll_interval` would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DeployTimeout, DokployTimeout, DokployTransientError
from providers.dokploy.models import Deployment

log = logging.getLogger("providers.dokploy")

FIRST_POLL_SECONDS = 0.05
# Quadrupling reaches a 2 s interval in three polls (at 0.05, 0.25 and 1.05 s): a quick
# build is seen within about a second, and a long one costs one or two polls more than
# polling at the interval from the start would. Doubling costs three or four more.
BACKOFF_FACTOR = 4.0


def poll_delays(first: float, cap: float) -> Iterator[float]:
    """How long to wait before each poll: `first`, then growing by BACKOFF_FACTOR up to
    `cap`, forever."""
    delay = min(first, cap)
    while True:
        yield delay
        delay = min(delay * BACKOFF_FACTOR, cap)


async def _list(
    client: DokployClient, application_id: str | None, compose_id: str | None
) -> list[Deployment]:
    if application_id is not None:
        return await client.deployment_all(application_id)
    assert compose_id is not None
    return await client.deployment_all_by_compose(compose_id)


async def _queue(
    client: DokployClient, application_id: str | None, compose_id: str | None, title: str | None
) -> None:
    if application_id is not None:
        await client.application_deploy(application_id, title=title)
    else:
        assert compose_id is not None
        await client.compose_deploy(compose_id, title=title)


def _ours(
    deployments: list[Deployment], seen: set[str], title: str | None, titled_only: bool
) -> Deployment | None:
    """The newest deployment that is not one we saw before deploying, preferring our title."""
    fresh = [d for d in deployments if d.deployment_id not in seen]
    titled = [d for d in fresh if title is not None and d.title == title]
    candidates = titled if titled_only else titled or fresh
    return candidates[0] if candidates else None


async def deploy_and_wait(
    client: DokployClient,
    *,
    application_id: str | None = None,
    compose_id: str | None = None,
    timeout: float,
    poll_interval: float = 2.0,
    title: str | None = None,
    never_deployed: bool = False,
    first_poll: float = FIRST_POLL_SECONDS,
) -> Deployment:
    """Deploy one service and return its new deployment once it is done, error or cancelled.

    The caller checks `.status`. Raises DeployTimeout when no new deployment shows up, or
    it stays non-terminal, within `timeout` seconds: no wait between polls runs past the
    deadline, and the last poll is made there. With `title`, a new deployment with that
    title is preferred over one somebody else started at the same moment.

    `never_deployed`: the caller knows the service has no deployments (it created it moments
    ago), so the list is not read before deploying; only a deployment carrying `title` is
    then taken for ours, as nothing else tells ours from one somebody else started.
    """
    if (application_id is None) == (compose_id is None):
        raise ValueError("deploy exactly one of application_id, compose_id")
    if never_deployed and title is None:
        raise ValueError("never_deployed needs a title to recognise the new deployment")
    target = f"application {application_id}" if application_id else f"compose {compose_id}"
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    if not never_deployed:
        seen = {d.deployment_id for d in await _list(client, application_id, compose_id)}
    try:
        await _queue(client, application_id, compose_id, title)
    except DokployTimeout:
        log.warning("dokploy deploy of %s timed out; polling in case it was queued", target)

    latest: Deployment | None = None
    for delay in poll_delays(first_poll, poll_interval):
        await anyio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        try:
            listed = await _list(client, application_id, compose_id)
        except DokployTransientError as exc:
            # Polls already retry; one bad poll window should not abandon a running build.
            log.warning("dokploy deployment poll for %s failed: %s", target, type(exc).__name__)
            listed = []
        latest = _ours(listed, seen, title, never_deployed) or latest
        if latest is not None and latest.is_terminal:
            return latest
        if time.monotonic() >= deadline:
            break
    if latest is None:
        raise DeployTimeout(f"no new deployment of {target} appeared within {timeout:g}s")
    raise DeployTimeout(
        f"deployment {latest.deployment_id} of {target} still {latest.status!r} after {timeout:g}s"
    )
