"""Deploy and wait: Dokploy's deploy call returns no deployment id, so we find it ourselves.

Before deploying we record which deployments exist; afterwards we poll the service's
deployment list (newest first) for one we have not seen, and wait for it to reach a
terminal status. If the deploy call itself times out the build may still have been
queued, so we keep polling rather than deploy a second time.
"""

from __future__ import annotations

import logging
import time

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DeployTimeout, DokployTimeout, DokployTransientError
from providers.dokploy.models import Deployment

log = logging.getLogger("providers.dokploy")


async def _list(
    client: DokployClient, application_id: str | None, compose_id: str | None
) -> list[Deployment]:
    if application_id is not None:
        return await client.deployment_all(application_id)
    assert compose_id is not None
    return await client.deployment_all_by_compose(compose_id)


async def deploy_and_wait(
    client: DokployClient,
    *,
    application_id: str | None = None,
    compose_id: str | None = None,
    timeout: float,
    poll_interval: float = 2.0,
    title: str | None = None,
) -> Deployment:
    """Deploy one service and return its new deployment once it is done, error or cancelled.

    The caller checks `.status`. Raises DeployTimeout when no new deployment shows up, or
    it stays non-terminal, within `timeout` seconds. With `title`, a new deployment with
    that title is preferred over one somebody else started at the same moment.
    """
    if (application_id is None) == (compose_id is None):
        raise ValueError("deploy exactly one of application_id, compose_id")
    target = f"application {application_id}" if application_id else f"compose {compose_id}"
    deadline = time.monotonic() + timeout
    seen = {d.deployment_id for d in await _list(client, application_id, compose_id)}

    try:
        if application_id is not None:
            await client.application_deploy(application_id, title=title)
        else:
            assert compose_id is not None
            await client.compose_deploy(compose_id, title=title)
    except DokployTimeout:
        log.warning("dokploy deploy of %s timed out; polling in case it was queued", target)

    latest: Deployment | None = None
    while True:
        try:
            fresh = [
                d
                for d in await _list(client, application_id, compose_id)
                if d.deployment_id not in seen
            ]
        except DokployTransientError as exc:
            # Polls already retry; one bad poll window should not abandon a running build.
            log.warning("dokploy deployment poll for %s failed: %s", target, type(exc).__name__)
            fresh = []
        if fresh:
            titled = [d for d in fresh if title is not None and d.title == title]
            latest = (titled or fresh)[0]
            if latest.is_terminal:
                return latest
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if latest is None:
                raise DeployTimeout(f"no new deployment of {target} appeared within {timeout:g}s")
            raise DeployTimeout(
                f"deployment {latest.deployment_id} of {target} still {latest.status!r} "
                f"after {timeout:g}s"
            )
        await anyio.sleep(min(poll_interval, remaining))
