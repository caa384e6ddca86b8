"""Execute product-lane actions against Dokploy. Side effects live here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from desired_state.secrets import SecretRef
from providers.dokploy.client import DokployClient
from providers.dokploy.deploy import deploy_and_wait
from providers.dokploy.ensure import (
    ensure_application,
    ensure_compose,
    ensure_environment,
    ensure_project,
)
from providers.dokploy.envfile import merge as merge_env
from providers.dokploy.errors import DokployError
from reconciler.core.plans import Action, Op
from reconciler.kinds.base import ActionFailed, ActionOutcome
from reconciler.kinds.product.diff import environment_key, project_key
from reconciler.records import ownership
from reconciler.runtime import HealthCheck
from reconciler.secrets import SecretUnavailable, StoreReader, fingerprint, resolve

log = logging.getLogger("setpoint.apply")


@dataclass
class ProductExecutor:
    client: DokployClient
    engine: Engine
    salt: str
    health_check: HealthCheck
    environ: Mapping[str, str] | None = None
    store: StoreReader | None = None
    poll_interval: float = 1.0
    resolved: dict[str, str] = field(default_factory=dict)  # logical ref -> provider id

    async def execute(self, action: Action) -> ActionOutcome:
        handler = _HANDLERS[action.op]
        try:
            return await handler(self, action)
        except DokployError as exc:  # typed, and free of secrets by construction
            raise ActionFailed(f"{type(exc).__name__}: {exc}") from exc

    def _id(self, param: Mapping[str, Any]) -> str:
        if param.get("id"):
            return str(param["id"])
        ref = str(param["ref"])
        if ref not in self.resolved:
            raise ActionFailed(f"{ref} was not created by an earlier action")
        return self.resolved[ref]

    def _service(self, action: Action) -> tuple[str, str]:
        service = action.params["service"]
        return str(service["type"]), self._id(service)

    # -- creates ---------------------------------------------------------------------------

    async def _create_project(self, action: Action) -> ActionOutcome:
        name = action.params["name"]
        project, created = await ensure_project(
            self.client, name, description="managed by Setpoint"
        )
        self.resolved[project_key(name)] = project.project_id
        for environment in project.environments:
            self.resolved[environment_key(name, environment.name)] = environment.environment_id
        verb = "created" if created else "found existing"
        return ActionOutcome(True, f"{verb} project {name} ({project.project_id})")

    async def _create_environment(self, action: Action) -> ActionOutcome:
        project_id = self._id(action.params["project"])
        name = action.params["name"]
        environment, created = await ensure_environment(self.client, project_id, name)
        for ref in action.params["provides"]:
            self.resolved[ref] = environment.environment_id
        verb = "created" if created else "found existing"
        return ActionOutcome(True, f"{verb} environment {name} ({environment.environment_id})")

    async def _create_service(self, action: Action) -> ActionOutcome:
        environment_id = self._id(action.params["environment"])
        name = action.params["name"]
        kind = "application" if action.op is Op.create_application else "compose"
        server_id = action.params.get("server_id")
        if kind == "application":
            app, created = await ensure_application(
                self.client, environment_id, name, server_id=server_id
            )
            service_id = app.application_id
        else:
            compose, created = await ensure_compose(
                self.client, environment_id, name, server_id=server_id
            )
            service_id = compose.compose_id
        if not created:
            # Someone made a service with this name after the plan was computed: not ours.
            raise ActionFailed(
                f"an unowned {kind} named {name!r} appeared after planning; left untouched"
            )
        ownership.claim(
            self.engine,
            provider="dokploy",
            object_type=kind,
            object_id=service_id,
            name=name,
            lane=action.lane,
            protected=bool(action.params.get("protected")),
        )
        for ref in action.params["provides"]:
            self.resolved[ref] = service_id
        return ActionOutcome(True, f"created {kind} {name} ({service_id})", {"id": service_id})

    # -- configuration ---------------------------------------------------------------------

    async def _set_image(self, action: Action) -> ActionOutcome:
        _, service_id = self._service(action)
        await self.client.application_save_docker_provider(
            service_id, docker_image=action.params["image"]
        )
        return ActionOutcome(True, f"image set to {action.params['image']}")

    async def _set_replicas(self, action: Action) -> ActionOutcome:
        _, service_id = self._service(action)
        await self.client.application_update(service_id, replicas=action.params["replicas"])
        return ActionOutcome(True, f"replicas set to {action.params['replicas']}")

    async def _set_compose_file(self, action: Action) -> ActionOutcome:
        _, service_id = self._service(action)
        await self.client.compose_update(
            service_id, compose_file=action.params["compose_file"], source_type="raw"
        )
        return ActionOutcome(True, "compose file updated")

    async def _set_env(self, action: Action) -> ActionOutcome:
        kind, service_id = self._service(action)
        owned: dict[str, str] = dict(action.params["plain"])
        for key, ref in action.params["secret_refs"].items():
            try:
                value = resolve(
                    SecretRef.model_validate(ref), environ=self.environ, store=self.store
                )
            except SecretUnavailable as exc:
                raise ActionFailed(f"{key}: {exc}") from None
            if fingerprint(self.salt, value) != action.params["secret_fingerprints"].get(key):
                raise ActionFailed(f"secret {key} changed since the plan was computed; plan again")
            owned[key] = value.reveal()
        current = (
            (await self.client.application_one(service_id)).env
            if kind == "application"
            else (await self.client.compose_one(service_id)).env
        )
        text = merge_env(current, owned, action.params["remove"])
        if kind == "application":
            await self.client.application_save_environment(service_id, text)
        else:
            await self.client.compose_save_environment(service_id, text)
        ownership.update_service(
            self.engine,
            provider="dokploy",
            object_type=kind,
            object_id=service_id,
            managed_env_keys=sorted(owned),
            plain_env_keys=sorted(action.params["plain"]),
        )
        return ActionOutcome(True, f"env saved ({len(owned)} managed key(s); values not shown)")

    async def _upsert_domain(self, action: Action) -> ActionOutcome:
        kind, service_id = self._service(action)
        p = action.params
        common: dict[str, Any] = {
            "path": p["path"],
            "port": p["port"],
            "https": p["https"],
            "certificate_type": "letsencrypt" if p["https"] else "none",
        }
        if p["domain_id"]:
            await self.client.domain_update(
                p["domain_id"], host=p["host"], service_name=p["service_name"], **common
            )
            return ActionOutcome(True, f"domain {p['host']}{p['path']} updated")
        target = (
            {"application_id": service_id}
            if kind == "application"
            else {"compose_id": service_id, "service_name": p["service_name"]}
        )
        domain = await self.client.domain_create(p["host"], **target, **common)
        return ActionOutcome(True, f"domain {p['host']}{p['path']} created ({domain.domain_id})")

    async def _delete_domain(self, action: Action) -> ActionOutcome:
        await self.client.domain_delete(action.params["domain_id"])
        return ActionOutcome(True, f"domain {action.params['domain_id']} deleted")

    # -- deploy and delete -----------------------------------------------------------------

    async def _deploy(self, action: Action) -> ActionOutcome:
        kind, service_id = self._service(action)
        target = (
            {"application_id": service_id} if kind == "application" else {"compose_id": service_id}
        )
        deployment = await deploy_and_wait(
            self.client,
            **target,
            timeout=float(action.params["timeout_seconds"]),
            poll_interval=self.poll_interval,
            title=f"setpoint {action.lane} {action.id}",
        )
        outputs: dict[str, Any] = {
            "deployment_id": deployment.deployment_id,
            "status": deployment.status,
        }
        if deployment.status != "done":
            raise ActionFailed(f"deployment {deployment.deployment_id} ended {deployment.status}")
        results = []
        for check in action.params["health_checks"]:
            result = await self.health_check(
                check["url"], check["expect_status"], check["timeout_seconds"]
            )
            results.append(
                {
                    "url": result.url,
                    "ok": result.ok,
                    "status": result.status,
                    "reason": result.reason,
                }
            )
            if not result.ok:
                raise ActionFailed(f"health check {check['url']} failed: {result.reason}")
        outputs["health"] = results
        ownership.update_service(
            self.engine,
            provider="dokploy",
            object_type=kind,
            object_id=service_id,
            deployed_config_hash=action.params["config_hash"],
        )
        checks = f", {len(results)} health check(s) passed" if results else ""
        return ActionOutcome(True, f"deployment {deployment.deployment_id} done{checks}", outputs)

    async def _delete_service(self, action: Action) -> ActionOutcome:
        kind = action.params["service_type"]
        service_id = action.params["service_id"]
        if kind == "application":
            await self.client.application_delete(service_id)
        else:
            await self.client.compose_delete(service_id)
        ownership.release(self.engine, provider="dokploy", object_type=kind, object_id=service_id)
        return ActionOutcome(True, f"{kind} {service_id} deleted")


_HANDLERS: dict[Op, Callable[[ProductExecutor, Action], Awaitable[ActionOutcome]]] = {
    Op.create_project: ProductExecutor._create_project,
    Op.create_environment: ProductExecutor._create_environment,
    Op.create_application: ProductExecutor._create_service,
    Op.create_compose: ProductExecutor._create_service,
    Op.set_image: ProductExecutor._set_image,
    Op.set_replicas: ProductExecutor._set_replicas,
    Op.set_compose_file: ProductExecutor._set_compose_file,
    Op.set_env: ProductExecutor._set_env,
    Op.upsert_domain: ProductExecutor._upsert_domain,
    Op.delete_domain: ProductExecutor._delete_domain,
    Op.deploy: ProductExecutor._deploy,
    Op.delete_service: ProductExecutor._delete_service,
}
