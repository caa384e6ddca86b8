"""Create-if-absent for Dokploy objects that have no idempotency key.

Dokploy does not reject a second project, environment, application or compose with the
same name, so a create that is repeated after a lost answer makes a duplicate. We therefore
look the object up by name before creating it, unless the caller already knows it is absent,
and after a timeout on the create we always read Dokploy again before deciding anything:
the create may well have happened.

`ProjectIndex` keeps one `project.all` listing (projects with their environments) for a
whole apply, so ensuring N projects or environments costs one listing, not N.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployAnswerLost, DokployConflict, DokployTimeout
from providers.dokploy.models import Application, Compose, Environment, Project

log = logging.getLogger("providers.dokploy")

T = TypeVar("T", Application, Compose)
Named = TypeVar("Named", Application, Compose, Environment, Project)


class AmbiguousName(DokployConflict):
    """More than one object has the name we look up; we refuse to guess which is ours."""


def _pick(found: list[Named], name: str, what: str) -> Named | None:
    matches = [o for o in found if o.name == name]
    if len(matches) > 1:
        raise AmbiguousName(f"{len(matches)} {what} named {name!r}")
    return matches[0] if matches else None


async def _ensure_named(
    name: str,
    what: str,
    lookup: Callable[[bool], Awaitable[list[Named]]],
    create: Callable[[], Awaitable[Named]],
    attempts: int,
    *,
    known_absent: bool = False,
) -> tuple[Named, bool]:
    """Return (object, created): look `name` up, create it if absent, and after a lost
    answer look it up again before trying anything else.

    `lookup(fresh)` lists the candidates; `fresh` is True after a lost answer, when only a
    new read from Dokploy will do. With `known_absent` the caller knows nothing had the name
    (the plan saw none), so the first attempt creates at once. What a retry finds is the
    create whose answer was lost, so it counts as created; only what the first lookup
    finds was there before.
    """
    for attempt in range(1, attempts + 1):
        retry = attempt > 1
        if retry or not known_absent:
            existing = _pick(await lookup(retry), name, what)
            if existing is not None:
                return existing, retry
        try:
            return await create(), True
        except (DokployTimeout, DokployAnswerLost):  # the work may be done: look again
            log.warning("dokploy create of %s %r timed out; looking it up again", what, name)
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _ensure_service(
    client: DokployClient,
    environment_id: str,
    name: str,
    select: Callable[[Environment], list[T]],
    create: Callable[[], Awaitable[T]],
    attempts: int,
    known_absent: bool,
) -> tuple[T, bool]:
    async def lookup(_: bool) -> list[T]:
        # environment.one is a fresh read every time: no cache to bypass after a timeout.
        return select(await client.environment_one(environment_id))

    what = f"services in environment {environment_id}"
    return await _ensure_named(name, what, lookup, create, attempts, known_absent=known_absent)


async def ensure_application(
    client: DokployClient,
    environment_id: str,
    name: str,
    *,
    app_name: str | None = None,
    description: str | None = None,
    server_id: str | None = None,
    attempts: int = 3,
    known_absent: bool = False,
) -> tuple[Application, bool]:
    """Return (application, created). `created` is True when this call made it, including
    a create whose answer was lost and which was then found by name.

    `known_absent`: the caller knows the environment has no service of this name (a plan
    saw none and the apply re-checked that), so it is not read before the first create.
    """

    async def create() -> Application:
        return await client.application_create(
            name, environment_id, app_name=app_name, description=description, server_id=server_id
        )

    return await _ensure_service(
        client, environment_id, name, lambda e: e.applications, create, attempts, known_absent
    )


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
    known_absent: bool = False,
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

    return await _ensure_service(
        client, environment_id, name, lambda e: e.compose, create, attempts, known_absent
    )


class ProjectIndex:
    """Dokploy's projects and their environments as one apply sees them: one `project.all`,
    read on first use and kept up to date with every create made through this index.

    Actions of one apply may ask concurrently (tasks on one event loop): the listing is read
    once under a lock, and each name is ensured under its own lock, so this index never
    creates a name twice and creates of different names still overlap. After a lost answer
    Dokploy is read again, and what it lists is merged in, never dropped: a create another
    task made meanwhile stays known.
    """

    def __init__(self, client: DokployClient) -> None:
        self._client = client
        self._projects: dict[str, Project] | None = None  # project id -> project
        self._loading = anyio.Lock()
        self._ensuring: dict[tuple[str, ...], anyio.Lock] = {}

    def _lock(self, *key: str) -> anyio.Lock:
        # No await between the lookup and the insert: tasks on one loop cannot interleave.
        return self._ensuring.setdefault(key, anyio.Lock())

    async def _listing(self) -> dict[str, Project]:
        async with self._loading:
            if self._projects is None:
                listed = await self._client.project_all()
                self._projects = {}
                self._merge(listed)
            return self._projects

    async def _reread(self) -> dict[str, Project]:
        projects = await self._listing()
        self._merge(await self._client.project_all())
        return projects

    def _merge(self, listed: list[Project]) -> None:
        assert self._projects is not None
        for project in listed:
            known = self._projects.setdefault(project.project_id, project)
            if known is not project:
                self._merge_environments(known, project.environments)

    @staticmethod
    def _merge_environments(project: Project, listed: list[Environment]) -> None:
        ids = {e.environment_id for e in project.environments}
        project.environments.extend(e for e in listed if e.environment_id not in ids)

    async def _confirm_absent(self, name: str) -> None:
        """Merge in any project `project.search` finds named `name`, with its environments
        (the search answers rows without them)."""
        found = await self._client.project_named(name)
        for project in found:
            project.environments = await self._client.environment_by_project_id(project.project_id)
        if found:
            log.warning(
                "dokploy project.all did not list project %r, but project.search finds it; "
                "using the project found",
                name,
            )
        self._merge(found)

    async def ensure_project(
        self, name: str, *, description: str | None = None, attempts: int = 3
    ) -> tuple[Project, bool]:
        """Return (project, created). A new project comes with its `production` environment."""

        async def lookup(fresh: bool) -> list[Project]:
            projects = await (self._reread() if fresh else self._listing())
            if not any(p.name == name for p in projects.values()):
                # Not listed is not proof of absence: `project.all` can answer short (a
                # proxy, a flapping backend), and a create on its word makes a second
                # project of the name. Ask Dokploy by name, another way, before creating.
                await self._confirm_absent(name)
            return list(projects.values())

        async def create() -> Project:
            created = await self._client.project_create(name, description)
            project = created.project
            if not project.environments:
                project.environments = [created.environment]
            self._merge([project])
            return project

        async with self._lock("project", name):
            return await _ensure_named(name, "projects", lookup, create, attempts)

    async def ensure_environment(
        self, project_id: str, name: str, *, description: str | None = None, attempts: int = 3
    ) -> tuple[Environment, bool]:
        """Return (environment, created), looked up in the listing; after a lost answer in
        Dokploy's current environments of the project."""

        async def lookup(fresh: bool) -> list[Environment]:
            project = (await self._listing()).get(project_id)
            if project is not None and not fresh:
                return project.environments
            # Not listed (made after the listing by someone else) or a lost answer: ask now.
            listed = await self._client.environment_by_project_id(project_id)
            if project is not None:
                self._merge_environments(project, listed)
            return listed

        async def create() -> Environment:
            environment = await self._client.environment_create(project_id, name, description)
            project = (await self._listing()).get(project_id)
            if project is not None:
                self._merge_environments(project, [environment])
            return environment

        async with self._lock("environment", project_id, name):
            return await _ensure_named(name, "environments", lookup, create, attempts)


async def ensure_project(
    client: DokployClient, name: str, *, description: str | None = None, attempts: int = 3
) -> tuple[Project, bool]:
    """Return (project, created), listing projects afresh. A new project comes with its
    `production` environment. An apply that ensures many uses one ProjectIndex instead."""
    return await ProjectIndex(client).ensure_project(
        name, description=description, attempts=attempts
    )


async def ensure_environment(
    client: DokployClient,
    project_id: str,
    name: str,
    *,
    description: str | None = None,
    attempts: int = 3,
) -> tuple[Environment, bool]:
    """Return (environment, created), reading the project's environments afresh."""

    async def lookup(_: bool) -> list[Environment]:
        return await client.environment_by_project_id(project_id)

    async def create() -> Environment:
        return await client.environment_create(project_id, name, description)

    return await _ensure_named(name, "environments", lookup, create, attempts)
