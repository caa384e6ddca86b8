"""Application and compose services as one strategy: the one place that tells them apart.

Dokploy has parallel procedures for the two (`application.one` / `compose.one`,
`saveEnvironment`, `delete`, deploy and domain targets); everything else in the product kind
asks the strategy for the lane's service type instead of branching on it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict

from providers.dokploy.client import DokployClient
from providers.dokploy.ensure import ensure_application, ensure_compose
from providers.dokploy.models import Application, Compose
from reconciler.kinds.product.ops import Op


class ServiceType(StrEnum):
    application = "application"
    compose = "compose"


class DeployTarget(TypedDict, total=False):
    """The service a deploy is for, as `deploy_and_wait` names it: one of the two ids."""

    application_id: str
    compose_id: str


class ServiceStrategy:
    """What differs between the two service types; one instance of each below."""

    type: ServiceType
    create_op: Op
    has_replicas: bool  # compose files set their own
    domains_need_deploy: bool  # compose domains are labels written at deploy time

    async def ensure(
        self,
        client: DokployClient,
        environment_id: str,
        name: str,
        server_id: str | None,
        *,
        known_absent: bool = False,
    ) -> tuple[str, bool]:
        """The service's id, and whether it was created now. `known_absent`: the caller knows
        no service has the name, so the first attempt creates without reading first."""
        raise NotImplementedError

    async def read(self, client: DokployClient, service_id: str) -> Application | Compose:
        raise NotImplementedError

    async def save_env(
        self, client: DokployClient, current: Application | Compose, text: str
    ) -> None:
        """Save env text into the service as read just before (`current`): whatever else
        `saveEnvironment` sets (build args, build secrets, the env-file flag) is sent back as
        it was read, so an operator's build settings survive an env change."""
        raise NotImplementedError

    async def delete(self, client: DokployClient, service_id: str) -> None:
        raise NotImplementedError

    def domain_target(self, service_id: str, service_name: str | None) -> dict[str, Any]:
        """Where a new domain points."""
        raise NotImplementedError

    def deploy_target(self, service_id: str) -> DeployTarget:
        raise NotImplementedError


class _ApplicationService(ServiceStrategy):
    type = ServiceType.application
    create_op = Op.create_application
    has_replicas = True
    domains_need_deploy = False

    async def ensure(
        self,
        client: DokployClient,
        environment_id: str,
        name: str,
        server_id: str | None,
        *,
        known_absent: bool = False,
    ) -> tuple[str, bool]:
        app, created = await ensure_application(
            client, environment_id, name, server_id=server_id, known_absent=known_absent
        )
        return app.application_id, created

    async def read(self, client: DokployClient, service_id: str) -> Application:
        return await client.application_one(service_id)

    async def save_env(
        self, client: DokployClient, current: Application | Compose, text: str
    ) -> None:
        assert isinstance(current, Application)
        await client.application_save_environment(
            current.application_id,
            text,
            build_args=current.build_args,
            build_secrets=current.build_secrets,
            create_env_file=_env_file_flag(current.create_env_file),
        )

    async def delete(self, client: DokployClient, service_id: str) -> None:
        await client.application_delete(service_id)

    def domain_target(self, service_id: str, service_name: str | None) -> dict[str, Any]:
        return {"application_id": service_id}

    def deploy_target(self, service_id: str) -> DeployTarget:
        return {"application_id": service_id}


class _ComposeService(ServiceStrategy):
    type = ServiceType.compose
    create_op = Op.create_compose
    has_replicas = False
    domains_need_deploy = True

    async def ensure(
        self,
        client: DokployClient,
        environment_id: str,
        name: str,
        server_id: str | None,
        *,
        known_absent: bool = False,
    ) -> tuple[str, bool]:
        compose, created = await ensure_compose(
            client, environment_id, name, server_id=server_id, known_absent=known_absent
        )
        return compose.compose_id, created

    async def read(self, client: DokployClient, service_id: str) -> Compose:
        return await client.compose_one(service_id)

    async def save_env(
        self, client: DokployClient, current: Application | Compose, text: str
    ) -> None:
        assert isinstance(current, Compose)
        await client.compose_save_environment(
            current.compose_id, text, create_env_file=_env_file_flag(current.create_env_file)
        )

    async def delete(self, client: DokployClient, service_id: str) -> None:
        await client.compose_delete(service_id)

    def domain_target(self, service_id: str, service_name: str | None) -> dict[str, Any]:
        # A compose domain also names the compose service it routes to.
        return {"compose_id": service_id, "service_name": service_name}

    def deploy_target(self, service_id: str) -> DeployTarget:
        return {"compose_id": service_id}


def _env_file_flag(observed: bool | None) -> bool:
    return True if observed is None else observed  # Dokploy's default when it did not say


APPLICATION: ServiceStrategy = _ApplicationService()
COMPOSE: ServiceStrategy = _ComposeService()
SERVICES = {strategy.type.value: strategy for strategy in (APPLICATION, COMPOSE)}
BY_CREATE_OP = {strategy.create_op.value: strategy for strategy in (APPLICATION, COMPOSE)}


def strategy_for(service_type: str) -> ServiceStrategy:
    return SERVICES[service_type]


def identify(service: Application | Compose) -> tuple[ServiceStrategy, str]:
    """The strategy and id of a service Dokploy listed."""
    if isinstance(service, Application):
        return APPLICATION, service.application_id
    return COMPOSE, service.compose_id
