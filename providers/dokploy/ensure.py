"""Create-if-absent for Dokploy objects that have no idempotency key.

Dokploy does not reject a second application or compose with the same name, so a create
that is repeated after a lost answer makes a duplicate. We therefore look the object up
by name in its environment first, and after a timeout on the create we look again before
deciding anything: the create may well have happened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployConflict, DokployTimeout
from providers.dokploy.models import Application, Compose, Environment, Project

log = logging.getLogger("providers.dokploy")

T = TypeVar("T", Application, Compose)


class AmbiguousName(DokployConflict):
    """More than one object has the name we look up; we refuse to guess which is ours."""


def _pick(found: list[T], name: str, where: str) -> T | None:
    matches = [o for o in found if o.name == name]
    if len(matches) > 1:
        raise AmbiguousName(f"{len(matches)} services named {name!r} in {where}")
    return matches[0] if matches else None


async def _ensure(
    client: DokployClient,
    environment_id: str,
    name: str,
    select: Callable[[Environment], list[T]],
    create: Callable[[], Awaitable[T]],
    attempts: int,
) -> tuple[T, bool]:
    where = f"environment {environment_id}"
    for attempt in range(1, attempts + 1):
        existing = _pick(select(await client.environment_one(environment_id)), name, where)
        if existing is not None:
            return existing, attempt > 1
        try:
            return await create(), True
        except DokployTimeout:
            log.warning("dokploy create of %r in %s timed out; looking it up again", name, where)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def ensure_application(
    client: DokployClient,
    environment_id: str,
    name: str,
    *,
    app_name: str | None = None,
    description: str | None = None,
    server_id: str | None = None,
    attempts: int = 3,
) -> tuple[Application, bool]:
    """Return (application, created). `created` is True when this call made it, including
    a create whose answer was lost and which was then found by name."""

    async def create() -> Application:
        return await client.application_create(
            name, environment_id, app_name=app_name, description=description, server_id=server_id
        )

    return await _ensure(client, environment_id, name, lambda e: e.applications, create, attempts)


async def ensure_compose(
    client: DokployClient,
    environment_id: str,
    name: str,
    *,
    compose_file: str | None = None,
    app_name: str | None = None,
    description: str | None = None,
    server_id: str | None = None,
    attempts: int = 3,
) -> tuple[Compose, bool]:
    """Return (compose, created); see ensure_application."""

    async def create() -> Compose:
        return await client.compose_create(
            name,
            environment_id,
            compose_file=compose_file,
            app_name=app_name,
            description=description,
            server_id=server_id,
        )

    return await _ensure(client, environment_id, name, lambda e: e.compose, create, attempts)


async def ensure_project(
    client: DokployClient, name: str, *, description: str | None = None, attempts: int = 3
) -> tuple[Project, bool]:
    """Return (project, created). A new project comes with its `production` environment."""
    for attempt in range(1, attempts + 1):
        matches = [p for p in await client.project_all() if p.name == name]
        if len(matches) > 1:
            raise AmbiguousName(f"{len(matches)} projects named {name!r}")
        if matches:
            return matches[0], attempt > 1
        try:
            created = await client.project_create(name, description)
        except DokployTimeout:
            log.warning("dokploy create of project %r timed out; looking it up again", name)
            if attempt == attempts:
                raise
            continue
        project = created.project
        if not project.environments:
            project.environments = [created.environment]
        return project, True
    raise AssertionError("unreachable")  # pragma: no cover


async def ensure_environment(
    client: DokployClient,
    project_id: str,
    name: str,
    *,
    description: str | None = None,
    attempts: int = 3,
) -> tuple[Environment, bool]:
    """Return (environment, created)."""
    for attempt in range(1, attempts + 1):
        envs = await client.environment_by_project_id(project_id)
        matches = [e for e in envs if e.name == name]
        if len(matches) > 1:
            raise AmbiguousName(f"{len(matches)} environments named {name!r}")
        if matches:
            return matches[0], attempt > 1
        try:
            return await client.environment_create(project_id, name, description), True
        except DokployTimeout:
            log.warning("dokploy create of environment %r timed out; looking it up again", name)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
