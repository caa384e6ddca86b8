"""Deploy and wait: Dokploy's deploy call returns no deployment id, so we find it ourselves.

Before deploying we record which deployments exist; afterwards we poll the service's
deployment list (newest first) for one we have not seen, and wait for it to reach a
terminal status. If the deploy call itself times out the build may still have been
queued, so we keep polling rather than deploy a second time.

Dokploy v0.30 builds one deployment at a time per server, first in first out, and a
deployment appears in the list only when its build starts. So a deploy's timeout counts
from when its build starts; before that it is queued (`DeployQueued`), which is not a
failure. A deploy asked for earlier (by a worker that died) is awaited with `ask=False`.

Polls start fast and back off: a quick build is seen within a fraction of a second, and a
long one costs no more requests than polling at `poll_interval` would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import (
    DeployQueued,
    DeployTimeout,
    DokployTimeout,
    DokployTransientError,
)
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


async def _list(client: DokployClient, request: _Request) -> list[Deployment]:
    if request.application_id is not None:
        return await client.deployment_all(request.application_id)
    assert request.compose_id is not None
    return await client.deployment_all_by_compose(request.compose_id)


async def _queue(client: DokployClient, request: _Request) -> None:
    if request.application_id is not None:
        await client.application_deploy(request.application_id, title=request.title)
    else:
        assert request.compose_id is not None
        await client.compose_deploy(request.compose_id, title=request.title)


def _ours(
    deployments: list[Deployment], seen: set[str], title: str | None, titled_only: bool
) -> Deployment | None:
    """The newest deployment that is not one we saw before deploying, preferring our title."""
    fresh = [d for d in deployments if d.deployment_id not in seen]
    titled = [d for d in fresh if title is not None and d.title == title]
    candidates = titled if titled_only else titled or fresh
    return candidates[0] if candidates else None


def _created_since_asked(deployment: Deployment, request: _Request) -> bool:
    """An awaited deploy's deployment that Dokploy created after it was asked for: ours,
    not one that was there before (Dokploy creates the row when the build starts)."""
    if request.asked_after is None or deployment.created_at is None:
        return False
    created = datetime.fromisoformat(deployment.created_at.replace("Z", "+00:00"))
    return created.timestamp() >= request.asked_after


class _Budget:
    """Seconds used of a wait, leaving out what Dokploy's 429s and their Retry-After cost."""

    def __init__(self, client: DokployClient, seconds: float) -> None:
        self._client = client
        self.seconds = seconds
        self.restart()

    def restart(self) -> None:
        self._started = time.monotonic()
        self._limited = self._client.rate_limited_seconds

    def used(self) -> float:
        limited = self._client.rate_limited_seconds - self._limited
        return time.monotonic() - self._started - limited

    def left(self) -> float:
        return self.seconds - self.used()


@dataclass(frozen=True)
class _Request:
    """The deploy asked for (see `deploy_and_wait`): of which service, whether it is asked
    for now or awaited, and how its deployment is told from others'."""

    application_id: str | None
    compose_id: str | None
    title: str | None
    never_deployed: bool
    ask: bool
    deployment_id: str | None
    # Awaiting a deploy asked for earlier: a deployment Dokploy created from this moment on
    # (epoch seconds, the caller's clock skew allowed for) is that deploy's, though it was
    # already listed (its build started between the plan and this wait).
    asked_after: float | None = None

    def __post_init__(self) -> None:
        if (self.application_id is None) == (self.compose_id is None):
            raise ValueError("deploy exactly one of application_id, compose_id")
        if self.titled_only and self.title is None and self.deployment_id is None:
            raise ValueError("a deploy that is not compared with the list before needs a title")

    @property
    def titled_only(self) -> bool:
        """Not compared with the list before it: only a deployment with its title is ours."""
        return self.never_deployed or not self.ask

    @property
    def target(self) -> str:
        if self.application_id is not None:
            return f"application {self.application_id}"
        return f"compose {self.compose_id}"


@dataclass
class _Watch:
    """What a deploy's polls have found: nothing yet (queued), then its deployment."""

    request: _Request
    seen: set[str]
    latest: Deployment | None = None

    def pick(self, listed: list[Deployment]) -> Deployment | None:
        wanted = self.request.deployment_id
        if wanted is not None:
            return next((d for d in listed if d.deployment_id == wanted), None)
        return _ours(listed, self.seen, self.request.title, self.request.titled_only)


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
    queue_timeout: float | None = None,
    ask: bool = True,
    deployment_id: str | None = None,
    asked_after: float | None = None,
) -> Deployment:
    """Deploy one service and return its new deployment once it is done, error or cancelled.

    The caller checks `.status`. Dokploy builds one deployment at a time per server and
    shows a deployment only once its build starts, so the wait has two parts: queued (no
    deployment yet), bounded by `queue_timeout` (default `timeout`), then building, bounded
    by `timeout` counted from when the build was first seen. Time spent refused with 429
    and waiting out Retry-After counts against neither. Raises DeployQueued when the build
    has not started in time, DeployTimeout when it started and did not end; no wait between
    polls runs past a deadline. With `title`, a new deployment with that title is preferred
    over one somebody else started at the same moment.

    `never_deployed`: the caller knows the service has no deployments (it created it moments
    ago), so the list is not read before deploying; only a deployment carrying `title` is
    then taken for ours, as nothing else tells ours from one somebody else started.
    `ask=False` asks for nothing: it awaits a deploy asked for earlier (by a worker that
    died, say), the newest deployment carrying `title`; `deployment_id` awaits that one.
    """
    request = _Request(
        application_id, compose_id, title, never_deployed, ask, deployment_id, asked_after
    )
    queued = _Budget(client, timeout if queue_timeout is None else queue_timeout)
    watch = await _start(client, queued, request)
    return await _await_build(client, watch, queued, timeout, (first_poll, poll_interval))


async def deploy_and_look(
    client: DokployClient,
    *,
    application_id: str | None = None,
    compose_id: str | None = None,
    look: float,
    queue_timeout: float,
    poll_interval: float = 2.0,
    title: str | None = None,
    never_deployed: bool = False,
    first_poll: float = FIRST_POLL_SECONDS,
    ask: bool = True,
    deployment_id: str | None = None,
    asked_after: float | None = None,
) -> Deployment:
    """`deploy_and_wait`, but once its build has started it is watched for at most `look`
    seconds rather than to its end: the deployment once it ended, or as last seen (still
    running: the caller looks again later, and keeps the build's deadline itself across its
    looks). Raises DeployQueued, as `deploy_and_wait` does, when the build has not started
    within `queue_timeout`."""
    request = _Request(
        application_id, compose_id, title, never_deployed, ask, deployment_id, asked_after
    )
    queued = _Budget(client, queue_timeout)
    watch = await _start(client, queued, request)
    try:
        return await _await_build(client, watch, queued, look, (first_poll, poll_interval))
    except DeployTimeout:  # its look is over, not its build
        assert watch.latest is not None
        return watch.latest


async def _start(client: DokployClient, budget: _Budget, request: _Request) -> _Watch:
    """What a deploy's polls look for, after asking for the deploy (when `ask`); `budget`
    starts once it is asked for."""
    watch = _Watch(request, set())
    if not request.never_deployed and request.deployment_id is None:
        # Only a deployment that was not there before counts, also when awaiting one asked
        # for earlier: an old deployment of the same title is not that one.
        listed = await _list(client, request)
        watch.seen = {d.deployment_id for d in listed if not _created_since_asked(d, request)}
    if request.ask:
        try:
            await _queue(client, request)
        except DokployTimeout:
            log.warning(
                "dokploy deploy of %s timed out; polling in case it was queued", request.target
            )
        budget.restart()  # a 429 on the deploy call itself is not queue time either
    return watch


async def _poll(client: DokployClient, watch: _Watch) -> list[Deployment]:
    try:
        return await _list(client, watch.request)
    except DokployTransientError as exc:
        # Polls already retry; one bad poll window should not abandon a running build.
        target = watch.request.target
        log.warning("dokploy deployment poll for %s failed: %s", target, type(exc).__name__)
        return []


async def _await_build(
    client: DokployClient,
    watch: _Watch,
    queued: _Budget,
    timeout: float,
    delays: tuple[float, float],
) -> Deployment:
    target = watch.request.target
    building: _Budget | None = None
    for delay in poll_delays(*delays):
        budget = building or queued
        await anyio.sleep(max(0.0, min(delay, budget.left())))
        watch.latest = watch.pick(await _poll(client, watch)) or watch.latest
        if watch.latest is not None and watch.latest.is_terminal:
            return watch.latest
        if watch.latest is not None and building is None:
            building = _Budget(client, timeout)  # its build started: the timeout starts now
        elif (building or queued).left() <= 0:
            break
    if watch.latest is None:
        raise DeployQueued(
            f"the deploy of {target} is still queued after {queued.seconds:g}s: Dokploy has "
            "not started its build (it builds one deployment at a time per server)"
        )
    raise DeployTimeout(
        f"deployment {watch.latest.deployment_id} of {target} still {watch.latest.status!r} "
        f"{timeout:g}s after its build started"
    )
