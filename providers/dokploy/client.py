"""Async client for the Dokploy procedures Setpoint uses (see docs/providers/dokploy.md)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from providers.dokploy.config import DokployConfig
from providers.dokploy.errors import DokployAnswerLost, DokployError
from providers.dokploy.models import (
    Application,
    Compose,
    Deployment,
    Domain,
    Environment,
    Project,
    ProjectCreated,
    ProjectPage,
    Server,
    User,
)
from providers.dokploy.rpc import RpcCaller, normalise_base_url
from providers.http_core import (
    DEFAULT_CONNECTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    RequestHook,
    RetryPolicy,
    add_request_hook,
)
from providers.http_transport import KeepAliveTransport
from providers.urgency import Slots

M = TypeVar("M", bound=BaseModel)
# project.search answers at most 100 a page; more pages than this is not a name check.
SEARCH_PAGE_SIZE = 100
SEARCH_PAGES = 10


def _camel_fields(fields: dict[str, Any]) -> dict[str, Any]:
    # Callers may pass snake_case or Dokploy's camelCase; to_camel leaves camelCase alone.
    return {to_camel(k): v for k, v in fields.items()}


class DokployClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 5.0,
        retry_after_cap: float = 30.0,
        deploy_parallelism: int = 1,
        max_connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        if deploy_parallelism < 1:
            raise ValueError("deploy_parallelism must be at least 1")
        self.base_url = normalise_base_url(base_url)
        self.deploy_parallelism = deploy_parallelism
        self._build_slots: dict[str, anyio.Semaphore] = {}
        self._api_key = SecretStr(api_key)
        # Every Dokploy call is small and most reuse a connection: the lean transport
        # costs a fraction of httpx's default per call (providers/http_transport.py).
        transport = transport or KeepAliveTransport(max_idle=max_connections)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"x-api-key": api_key, "accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )
        retry = RetryPolicy(
            attempts=retry_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            retry_after_cap=retry_after_cap,
        )
        # Requests in flight never outnumber the pool's connections (http_core.send).
        slots = Slots(max_connections)
        self._rpc = RpcCaller(
            self._http, transport=transport, timeout=timeout, retry=retry, slots=slots
        )

    def add_request_hook(self, hook: RequestHook) -> None:
        """Run `hook` before every request this client sends (the loop's rate limit)."""
        add_request_hook(self._http, hook)

    @classmethod
    def from_config(
        cls, config: DokployConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> DokployClient:
        return cls(
            config.url,
            config.api_key.get_secret_value(),
            timeout=config.timeout_seconds,
            transport=transport,
            retry_attempts=config.retry_attempts,
            backoff_base=config.retry_backoff_base,
            backoff_max=config.retry_backoff_max,
            retry_after_cap=config.retry_after_cap,
            deploy_parallelism=config.deploy_parallelism,
        )

    def __repr__(self) -> str:
        return f"DokployClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> DokployClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def rate_limited_seconds(self) -> float:
        """Seconds this client has spent refused with 429 and waiting out Retry-After."""
        return self._rpc.rate_limited_seconds

    def build_slots(self, server_id: str | None) -> anyio.Semaphore:
        """The deploys this client may have in Dokploy's build queue of one server (None: the
        Dokploy host itself) at once: `deploy_parallelism`, by default the one build at a time
        a Dokploy server runs, so a deploy is never timed while it waits behind our own."""
        key = server_id or ""
        if key not in self._build_slots:
            self._build_slots[key] = anyio.Semaphore(self.deploy_parallelism)
        return self._build_slots[key]

    # -- plumbing -------------------------------------------------------------------------

    async def _query(self, procedure: str, **params: str) -> Any:
        return await self._rpc.call(procedure, query=params, idempotent=True)

    async def _mutate(self, procedure: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        return await self._rpc.call(procedure, body=body, idempotent=idempotent)

    @staticmethod
    def _one(procedure: str, model: type[M], data: Any) -> M:
        if data is None:  # a 200 with no body: the call may have done its work
            raise DokployAnswerLost("answered with an empty body", procedure=procedure)
        if not isinstance(data, dict):
            raise DokployError(
                f"expected an object, got {type(data).__name__}", procedure=procedure
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Only field locations: the input may contain env text or a compose file.
            where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise DokployError(
                f"unexpected response shape at {where}", procedure=procedure
            ) from None

    @classmethod
    def _many(cls, procedure: str, model: type[M], data: Any) -> list[M]:
        # An empty body or a non-list is not "nothing exists": fail closed (invariant 3).
        if not isinstance(data, list):
            raise DokployError(
                f"expected a list, got {'an empty body' if data is None else type(data).__name__}",
                procedure=procedure,
            )
        return [cls._one(procedure, model, item) for item in data]

    # -- preflight ------------------------------------------------------------------------

    async def preflight(self) -> User:
        """One cheap authenticated read; raises DokployUnauthorized for a bad key."""
        data = await self._query("user.get")
        return self._one("user.get", User, data if isinstance(data, dict) else {})

    # -- projects and environments --------------------------------------------------------

    async def project_all(self) -> list[Project]:
        return self._many("project.all", Project, await self._query("project.all"))

    async def project_one(self, project_id: str) -> Project:
        data = await self._query("project.one", projectId=project_id)
        return self._one("project.one", Project, data)

    async def project_named(self, name: str) -> list[Project]:
        """Projects named exactly `name`, asked of `project.search` (which matches a part of
        the name, case-insensitively): a read by name that does not go through
        `project.all`, to confirm a name is free before a create. No environments.

        Every page of matches is read (100 a page, at most SEARCH_PAGES): a short name may
        be part of many. A page that comes back short of what `total` promised, or more
        matches than that, raise: the answer would not show that none is named so."""
        found: list[Project] = []
        for page_number in range(SEARCH_PAGES):
            offset = page_number * SEARCH_PAGE_SIZE
            data = await self._query(
                "project.search", name=name, limit=str(SEARCH_PAGE_SIZE), offset=str(offset)
            )
            page = self._one("project.search", ProjectPage, data)
            found += [p for p in page.items if p.name == name]
            seen = offset + len(page.items)
            if seen >= page.total:
                return found
            if len(page.items) < SEARCH_PAGE_SIZE:
                break
        raise DokployError(
            f"could not read every project matching the name (over {seen} of {page.total})",
            procedure="project.search",
        )

    async def project_create(self, name: str, description: str | None = None) -> ProjectCreated:
        body: dict[str, Any] = {"name": name, "description": description}
        data = await self._mutate("project.create", body, idempotent=False)
        return self._one("project.create", ProjectCreated, data)

    async def environment_by_project_id(self, project_id: str) -> list[Environment]:
        data = await self._query("environment.byProjectId", projectId=project_id)
        return self._many("environment.byProjectId", Environment, data)

    async def environment_one(self, environment_id: str) -> Environment:
        """One environment with its applications and compose services."""
        data = await self._query("environment.one", environmentId=environment_id)
        return self._one("environment.one", Environment, data)

    async def environment_create(
        self, project_id: str, name: str, description: str | None = None
    ) -> Environment:
        body: dict[str, Any] = {"projectId": project_id, "name": name}
        if description is not None:
            body["description"] = description
        data = await self._mutate("environment.create", body, idempotent=False)
        return self._one("environment.create", Environment, data)

    async def environment_remove(self, environment_id: str) -> None:
        """Dokploy refuses the default environment (400); the caller checks it is empty."""
        body = {"environmentId": environment_id}
        await self._mutate("environment.remove", body, idempotent=False)

    # -- applications ---------------------------------------------------------------------

    async def application_create(
        self,
        name: str,
        environment_id: str,
        *,
        app_name: str | None = None,
        description: str | None = None,
        server_id: str | None = None,
    ) -> Application:
        body: dict[str, Any] = {"name": name, "environmentId": environment_id}
        if app_name is not None:
            body["appName"] = app_name
        if description is not None:
            body["description"] = description
        if server_id is not None:
            body["serverId"] = server_id
        data = await self._mutate("application.create", body, idempotent=False)
        return self._one("application.create", Application, data)

    async def application_one(self, application_id: str) -> Application:
        data = await self._query("application.one", applicationId=application_id)
        return self._one("application.one", Application, data)

    async def application_update(self, application_id: str, **fields: Any) -> None:
        body = {**_camel_fields(fields), "applicationId": application_id}
        await self._mutate("application.update", body, idempotent=True)

    async def application_delete(self, application_id: str) -> None:
        body = {"applicationId": application_id}
        await self._mutate("application.delete", body, idempotent=False)

    async def application_save_environment(
        self,
        application_id: str,
        env: str | None,
        build_args: str | None = None,
        build_secrets: str | None = None,
        create_env_file: bool = True,
    ) -> None:
        # Dokploy requires every key here, null included; omitting one is a 400.
        body = {
            "applicationId": application_id,
            "env": env,
            "buildArgs": build_args,
            "buildSecrets": build_secrets,
            "createEnvFile": create_env_file,
        }
        await self._mutate("application.saveEnvironment", body, idempotent=True)

    async def application_save_docker_provider(
        self,
        application_id: str,
        docker_image: str,
        username: str | None = None,
        password: str | None = None,
        registry_url: str | None = None,
    ) -> None:
        body = {
            "applicationId": application_id,
            "dockerImage": docker_image,
            "username": username,
            "password": password,
            "registryUrl": registry_url,
        }
        await self._mutate("application.saveDockerProvider", body, idempotent=True)

    async def application_deploy(self, application_id: str, title: str | None = None) -> None:
        """Queue a build. Dokploy answers with an empty body: track it with deploy_and_wait."""
        await self._mutate(
            "application.deploy", _deploy_body(application_id, title), idempotent=False
        )

    async def application_redeploy(self, application_id: str, title: str | None = None) -> None:
        body = _deploy_body(application_id, title)
        await self._mutate("application.redeploy", body, idempotent=False)

    async def application_stop(self, application_id: str) -> None:
        await self._mutate("application.stop", {"applicationId": application_id}, idempotent=True)

    async def application_start(self, application_id: str) -> None:
        body = {"applicationId": application_id}
        await self._mutate("application.start", body, idempotent=True)

    # -- compose --------------------------------------------------------------------------

    async def compose_create(
        self,
        name: str,
        environment_id: str,
        *,
        compose_file: str | None = None,
        app_name: str | None = None,
        description: str | None = None,
        server_id: str | None = None,
        compose_type: str | None = None,
    ) -> Compose:
        body: dict[str, Any] = {"name": name, "environmentId": environment_id}
        optional = {
            "composeFile": compose_file,
            "appName": app_name,
            "description": description,
            "serverId": server_id,
            "composeType": compose_type,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if compose_file is not None:
            body["sourceType"] = "raw"
        data = await self._mutate("compose.create", body, idempotent=False)
        return self._one("compose.create", Compose, data)

    async def compose_one(self, compose_id: str) -> Compose:
        return self._one(
            "compose.one", Compose, await self._query("compose.one", composeId=compose_id)
        )

    async def compose_update(self, compose_id: str, **fields: Any) -> Compose:
        body = {**_camel_fields(fields), "composeId": compose_id}
        data = await self._mutate("compose.update", body, idempotent=True)
        if isinstance(data, dict):
            return self._one("compose.update", Compose, data)
        # v0.30 answers the updated row; older servers answer `true`: read it back.
        return await self.compose_one(compose_id)

    async def compose_delete(self, compose_id: str, delete_volumes: bool = False) -> None:
        body = {"composeId": compose_id, "deleteVolumes": delete_volumes}
        await self._mutate("compose.delete", body, idempotent=False)

    async def compose_save_environment(
        self, compose_id: str, env: str | None, create_env_file: bool = True
    ) -> None:
        body = {"composeId": compose_id, "env": env, "createEnvFile": create_env_file}
        await self._mutate("compose.saveEnvironment", body, idempotent=True)

    async def compose_deploy(self, compose_id: str, title: str | None = None) -> None:
        body: dict[str, Any] = {"composeId": compose_id}
        if title is not None:
            body["title"] = title
        await self._mutate("compose.deploy", body, idempotent=False)

    # -- domains --------------------------------------------------------------------------

    async def domain_by_application_id(self, application_id: str) -> list[Domain]:
        data = await self._query("domain.byApplicationId", applicationId=application_id)
        return self._many("domain.byApplicationId", Domain, data)

    async def domain_by_compose_id(self, compose_id: str) -> list[Domain]:
        data = await self._query("domain.byComposeId", composeId=compose_id)
        return self._many("domain.byComposeId", Domain, data)

    async def domain_one(self, domain_id: str) -> Domain:
        return self._one("domain.one", Domain, await self._query("domain.one", domainId=domain_id))

    async def domain_create(
        self,
        host: str,
        *,
        application_id: str | None = None,
        compose_id: str | None = None,
        path: str | None = "/",
        port: int | None = None,
        https: bool = False,
        certificate_type: str = "none",
        service_name: str | None = None,
    ) -> Domain:
        if (application_id is None) == (compose_id is None):
            raise ValueError("a domain belongs to exactly one of application_id, compose_id")
        body = _route(host, path, port, https, certificate_type)
        body["domainType"] = "application" if application_id else "compose"
        if application_id is not None:
            body["applicationId"] = application_id
        else:
            body["composeId"] = compose_id
            body["serviceName"] = service_name
        data = await self._mutate("domain.create", body, idempotent=False)
        return self._one("domain.create", Domain, data)

    async def domain_update(
        self,
        domain_id: str,
        *,
        host: str,
        path: str | None = "/",
        port: int | None = None,
        https: bool = False,
        certificate_type: str = "none",
        service_name: str | None = None,
    ) -> Domain:
        body = {"domainId": domain_id, **_route(host, path, port, https, certificate_type)}
        if service_name is not None:
            body["serviceName"] = service_name
        data = await self._mutate("domain.update", body, idempotent=True)
        if isinstance(data, dict):
            return self._one("domain.update", Domain, data)
        return await self.domain_one(domain_id)

    async def domain_delete(self, domain_id: str) -> None:
        await self._mutate("domain.delete", {"domainId": domain_id}, idempotent=False)

    # -- deployments and servers ----------------------------------------------------------

    async def deployment_all(self, application_id: str) -> list[Deployment]:
        data = await self._query("deployment.all", applicationId=application_id)
        return self._many("deployment.all", Deployment, data)

    async def deployment_all_by_compose(self, compose_id: str) -> list[Deployment]:
        data = await self._query("deployment.allByCompose", composeId=compose_id)
        return self._many("deployment.allByCompose", Deployment, data)

    async def deployment_log_tail(self, deployment_id: str, lines: int = 40) -> str:
        """The last `lines` of a deployment's build log (`deployment.readLogs`, which tails
        the deployment's `logPath` on its server; empty when the file is gone)."""
        data = await self._query("deployment.readLogs", deploymentId=deployment_id)
        text = data if isinstance(data, str) else ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    async def server_all(self) -> list[Server]:
        return self._many("server.all", Server, await self._query("server.all"))


def _route(
    host: str, path: str | None, port: int | None, https: bool, certificate_type: str
) -> dict[str, Any]:
    """The routing fields domain.create and domain.update share."""
    return {
        "host": host,
        "path": path,
        "port": port,
        "https": https,
        "certificateType": certificate_type,
    }


def _deploy_body(application_id: str, title: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"applicationId": application_id}
    if title is not None:
        body["title"] = title
    return body
