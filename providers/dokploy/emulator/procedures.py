"""The emulated Dokploy procedures: what each one changes and what it answers.

Answers follow the live captures: creates answer the row, most application writes
answer `true`, `application.deploy` answers nothing, `compose.update` the updated row,
`compose.deploy` `{success, message, composeId}`, deletes the deleted row.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.dokploy.emulator import inputs as i
from providers.dokploy.emulator.rows import APPLICATION_COLUMNS, COMPOSE_COLUMNS, DOMAIN_COLUMNS
from providers.dokploy.emulator.runners import runner_started, runner_stopped
from providers.dokploy.emulator.state import EmulatorState
from providers.dokploy.emulator.trpc import TrpcError
from providers.dokploy.emulator.views import (
    Listing,
    application_one,
    compose_one,
    domain_with_service,
    environment_of_project,
    environment_one,
    project_view,
)

Handler = Callable[[EmulatorState, Any], Any]

# Columns an update may not touch: identity, ownership and bookkeeping.
_FROZEN = {"applicationId", "composeId", "environmentId", "createdAt", "serverId"}


@dataclass(frozen=True)
class Procedure:
    method: str
    input: type[i.Input]
    handler: Handler


def _get(table: dict[str, dict[str, Any]], key: str, what: str) -> dict[str, Any]:
    row = table.get(key)
    if row is None:
        raise TrpcError("NOT_FOUND", f"{what} not found")
    return row


def _project_all(s: EmulatorState, _: i.NoInput) -> Any:
    listing = Listing.of(s)
    newest_first = reversed(s.projects.values())
    return [project_view(s, p, sparse=True, listing=listing) for p in newest_first]


def _project_one(s: EmulatorState, a: i.ProjectId) -> Any:
    return project_view(s, _get(s.projects, a.projectId, "Project"), sparse=False)


def _project_search(s: EmulatorState, a: i.ProjectSearch) -> Any:
    """Dokploy v0.30: `ilike %text%` on each filter given (`q` on name or description),
    newest first, the project rows without environments, and the count before paging."""

    def has(value: str | None, text: str | None) -> bool:
        return not text or text.strip().lower() in (value or "").lower()

    found = [
        p
        for p in reversed(s.projects.values())
        if has(p["name"], a.name)
        and has(p.get("description"), a.description)
        and (has(p["name"], a.q) or has(p.get("description"), a.q))
    ]
    limit = min(max(int(a.limit or 20), 1), 100)
    offset = max(int(a.offset or 0), 0)
    return {"items": copy.deepcopy(found[offset : offset + limit]), "total": len(found)}


def _new_environment(
    s: EmulatorState, project_id: str, name: str, desc: str | None, default: bool
) -> Any:
    env: dict[str, Any] = {
        "createdAt": s.iso(),
        "description": desc,
        "env": "",
        "environmentId": s.new_id(),
        "isDefault": default,
        "name": name,
        "projectId": project_id,
    }
    s.environments[env["environmentId"]] = env
    return env


def _project_create(s: EmulatorState, a: i.ProjectCreate) -> Any:
    project: dict[str, Any] = {
        "createdAt": s.iso(),
        "description": a.description,
        "env": a.env or "",
        "name": a.name,
        "organizationId": s.organization_id,
        "projectId": s.new_id(),
    }
    s.projects[project["projectId"]] = project
    env = _new_environment(s, project["projectId"], "production", "Production environment", True)
    return {"environment": copy.deepcopy(env), "project": copy.deepcopy(project)}


def _environment_by_project(s: EmulatorState, a: i.ProjectIdLoose) -> Any:
    _get(s.projects, a.projectId, "Project")
    envs = [e for e in s.environments.values() if e["projectId"] == a.projectId]
    return [environment_of_project(s, e) for e in envs]


def _environment_one(s: EmulatorState, a: i.EnvironmentId) -> Any:
    env = _get(s.environments, a.environmentId, "Environment")
    return environment_one(s, env)


def _environment_create(s: EmulatorState, a: i.EnvironmentCreate) -> Any:
    _get(s.projects, a.projectId, "Project")
    return copy.deepcopy(_new_environment(s, a.projectId, a.name, a.description, False))


def _environment_remove(s: EmulatorState, a: i.EnvironmentId) -> Any:
    env = _get(s.environments, a.environmentId, "Environment")
    if env["isDefault"]:
        raise TrpcError("BAD_REQUEST", "You cannot delete the default environment")
    # Dokploy's deleteEnvironment (packages/server/src/services/environment.ts) refuses an
    # environment holding any service or database, in these words; the emulator has no
    # databases, so applications and compose services are all it can hold.
    if any(
        x["environmentId"] == a.environmentId
        for x in (*s.applications.values(), *s.composes.values())
    ):
        raise TrpcError(
            "BAD_REQUEST",
            "Cannot delete environment: it has active services. Delete all services first.",
        )
    return s.environments.pop(a.environmentId)


def _unique_app_name(
    s: EmulatorState, app_name: str, what: str, except_id: str | None = None
) -> None:
    if s.app_name_taken(app_name, except_id):
        raise TrpcError("CONFLICT", f"{what} with this 'AppName' already exists")


def _application_create(s: EmulatorState, a: i.ApplicationCreate) -> Any:
    _get(s.environments, a.environmentId, "Environment")
    app_name = s.app_name(a.appName, "app")
    _unique_app_name(s, app_name, "Application")
    row = copy.deepcopy(APPLICATION_COLUMNS)
    row.update(
        applicationId=s.new_id(),
        appName=app_name,
        name=a.name,
        description=a.description,
        environmentId=a.environmentId,
        serverId=a.serverId,
        createdAt=s.iso(),
        refreshToken=s.new_id(),
    )
    if a.sourceType:
        row["sourceType"] = a.sourceType
    s.applications[row["applicationId"]] = row
    return dict(sorted(row.items()))


def _application_one(s: EmulatorState, a: i.ApplicationId) -> Any:
    _get(s.applications, a.applicationId, "Application")
    return application_one(s, a.applicationId)


def _patch(row: dict[str, Any], patch: dict[str, Any]) -> None:
    row.update({k: v for k, v in patch.items() if k in row and k not in _FROZEN})


def _application_update(s: EmulatorState, a: i.ApplicationUpdate) -> Any:
    patch = i.given(a)
    if not patch.keys() - {"applicationId"}:
        # Dokploy hands an empty SET to drizzle, which throws.
        raise TrpcError("INTERNAL_SERVER_ERROR", "No values to set")
    row = s.applications.get(a.applicationId)
    if row is None:  # the update returns no row, and Dokploy says so as a bad request
        raise TrpcError("BAD_REQUEST", "Error updating application")
    if "appName" in patch and patch["appName"] != row["appName"]:
        _unique_app_name(s, patch["appName"], "Application", a.applicationId)
    _patch(row, patch)
    return True


def _service_row(one: dict[str, Any]) -> dict[str, Any]:
    """What delete and stop answer: the service with its relations, as `*.one` shows it,
    less the git-provider access flags `*.one` works out for the caller."""
    return {
        k: v for k, v in one.items() if k not in ("hasGitProviderAccess", "unauthorizedProvider")
    }


def _live_env(s: EmulatorState, application_id: str) -> str | None:
    live = s.live.get(application_id)
    return live.env if live else None


def _application_delete(s: EmulatorState, a: i.ApplicationId) -> Any:
    _get(s.applications, a.applicationId, "Application")
    out = _service_row(application_one(s, a.applicationId))
    runner_stopped(s.runner_link, _live_env(s, a.applicationId))
    del s.applications[a.applicationId]
    s.forget_service(a.applicationId)
    return out


def _application_save_environment(s: EmulatorState, a: i.ApplicationSaveEnvironment) -> Any:
    row = _get(s.applications, a.applicationId, "Application")
    row.update(env=a.env, buildArgs=a.buildArgs, buildSecrets=a.buildSecrets)
    row["createEnvFile"] = a.createEnvFile
    return True


def _application_save_docker_provider(s: EmulatorState, a: i.ApplicationSaveDockerProvider) -> Any:
    row = _get(s.applications, a.applicationId, "Application")
    row.update(
        dockerImage=a.dockerImage,
        username=a.username,
        password=a.password,
        registryUrl=a.registryUrl,
        sourceType="docker",
    )
    return True


def _application_deploy(s: EmulatorState, a: i.ApplicationDeploy) -> Any:
    _get(s.applications, a.applicationId, "Application")
    s.queue_build("application", a.applicationId, a.title, a.description)
    return None


def _application_redeploy(s: EmulatorState, a: i.ApplicationDeploy) -> Any:
    _get(s.applications, a.applicationId, "Application")
    s.queue_build("application", a.applicationId, a.title or "Rebuild deployment", a.description)
    return None


def _application_stop(s: EmulatorState, a: i.ApplicationId) -> Any:
    row = _get(s.applications, a.applicationId, "Application")
    row["applicationStatus"] = "idle"
    runner_stopped(s.runner_link, _live_env(s, a.applicationId))
    return _service_row(application_one(s, a.applicationId))


def _application_start(s: EmulatorState, a: i.ApplicationId) -> Any:
    row = _get(s.applications, a.applicationId, "Application")
    row["applicationStatus"] = "done"
    runner_started(s.runner_link, _live_env(s, a.applicationId))
    return dict(sorted(row.items()))


def _compose_create(s: EmulatorState, a: i.ComposeCreate) -> Any:
    _get(s.environments, a.environmentId, "Environment")
    app_name = s.app_name(a.appName, "compose")
    _unique_app_name(s, app_name, "Compose")
    row = copy.deepcopy(COMPOSE_COLUMNS)
    row.update(
        composeId=s.new_id(),
        appName=app_name,
        name=a.name,
        description=a.description,
        environmentId=a.environmentId,
        serverId=a.serverId,
        createdAt=s.iso(),
        composeFile=a.composeFile or "",
        composeType=a.composeType or "docker-compose",
        sourceType=a.sourceType or "github",
        refreshToken=s.new_id(),
    )
    s.composes[row["composeId"]] = row
    return dict(sorted(row.items()))


def _compose_one(s: EmulatorState, a: i.ComposeId) -> Any:
    _get(s.composes, a.composeId, "Compose")
    return compose_one(s, a.composeId)


def _compose_update(s: EmulatorState, a: i.ComposeUpdate) -> Any:
    row = _get(s.composes, a.composeId, "Compose")
    patch = i.given(a)
    if "appName" in patch and patch["appName"] != row["appName"]:
        _unique_app_name(s, patch["appName"], "Compose", a.composeId)
    _patch(row, patch)
    return dict(sorted(row.items()))


def _compose_delete(s: EmulatorState, a: i.ComposeDelete) -> Any:
    _get(s.composes, a.composeId, "Compose")
    out = _service_row(compose_one(s, a.composeId))
    del s.composes[a.composeId]
    s.forget_service(a.composeId)
    return out


def _compose_save_environment(s: EmulatorState, a: i.ComposeSaveEnvironment) -> Any:
    row = _get(s.composes, a.composeId, "Compose")
    row["env"] = a.env
    if a.createEnvFile is not None:
        row["createEnvFile"] = a.createEnvFile
    return True


def _compose_deploy(s: EmulatorState, a: i.ComposeDeploy) -> Any:
    _get(s.composes, a.composeId, "Compose")
    s.queue_build("compose", a.composeId, a.title, a.description)
    return {"success": True, "message": "Deployment queued", "composeId": a.composeId}


def _domains_of(s: EmulatorState, key: str, service_id: str) -> list[dict[str, Any]]:
    return [domain_with_service(s, d) for d in s.domains.values() if d.get(key) == service_id]


def _domain_by_application(s: EmulatorState, a: i.ApplicationId) -> Any:
    return _domains_of(s, "applicationId", a.applicationId)


def _domain_by_compose(s: EmulatorState, a: i.ComposeId) -> Any:
    return _domains_of(s, "composeId", a.composeId)


def _domain_one(s: EmulatorState, a: i.DomainId) -> Any:
    return domain_with_service(s, _get(s.domains, a.domainId, "Domain"))


def _domain_create(s: EmulatorState, a: i.DomainCreate) -> Any:
    fields = i.given(a)
    if a.applicationId:
        _get(s.applications, a.applicationId, "Application")
    elif a.composeId:
        _get(s.composes, a.composeId, "Compose")
    else:
        raise TrpcError("BAD_REQUEST", "A domain needs an applicationId or a composeId")
    row = copy.deepcopy(DOMAIN_COLUMNS)
    row.update(domainId=s.new_id(), createdAt=s.iso(), applicationId=None, composeId=None)
    row["uniqueConfigKey"] = len(s.domains) + 1
    row["domainType"] = "application" if a.applicationId else "compose"
    _patch(row, fields)
    row["host"], row["applicationId"], row["composeId"] = a.host, a.applicationId, a.composeId
    s.domains[row["domainId"]] = row
    if a.applicationId:
        s.refresh_application_routes(a.applicationId)
    return dict(sorted(row.items()))


def _domain_update(s: EmulatorState, a: i.DomainUpdate) -> Any:
    row = _get(s.domains, a.domainId, "Domain")
    _patch(row, i.given(a))
    if row.get("applicationId"):
        s.refresh_application_routes(row["applicationId"])
    return dict(sorted(row.items()))


def _domain_delete(s: EmulatorState, a: i.DomainId) -> Any:
    row = _get(s.domains, a.domainId, "Domain")
    del s.domains[a.domainId]
    if row.get("applicationId"):
        s.refresh_application_routes(row["applicationId"])
    return row


def _deployment_all(s: EmulatorState, a: i.ApplicationId) -> Any:
    return s.deployments(a.applicationId)


def _deployment_all_by_compose(s: EmulatorState, a: i.ComposeId) -> Any:
    return s.deployments(a.composeId)


def _deployment_read_logs(s: EmulatorState, a: i.DeploymentLogs) -> Any:
    """Dokploy answers `tail -n TAIL logPath` as one string (empty when the file is gone)."""
    lines = s.deployment_log(a.deploymentId)
    if lines is None:
        raise TrpcError("NOT_FOUND", "Deployment not found")
    try:
        tail = int(a.tail) if a.tail is not None else 100
    except ValueError:
        raise TrpcError("BAD_REQUEST", "tail: Expected number, received nan") from None
    if not 1 <= tail <= 10000:
        raise TrpcError("BAD_REQUEST", "tail: Number must be between 1 and 10000")
    return "".join(f"{line}\n" for line in lines[-tail:])


def _server_all(s: EmulatorState, _: i.NoInput) -> Any:
    return [copy.deepcopy(v) for v in s.servers.values()]


def _user_get(s: EmulatorState, _: i.NoInput) -> Any:
    # The owner's membership as v0.30.2 answers it: an owner's `can*` flags are all false
    # (owners need none), and the accessed* lists are empty.
    flags = (
        "canCreateProjects",
        "canAccessToSSHKeys",
        "canCreateServices",
        "canDeleteProjects",
        "canDeleteServices",
        "canAccessToDocker",
        "canAccessToAPI",
        "canAccessToGitProviders",
        "canAccessToTraefikFiles",
        "canDeleteEnvironments",
        "canCreateEnvironments",
    )
    # The creator of an object is given access to it: the lists grow with what it made.
    accessed = {
        "Projects": list(s.projects),
        "Environments": list(s.environments),
        "Services": [*s.applications, *s.composes],
        "GitProviders": [],
        "Servers": [],
    }
    user = {
        "id": s.user_id,
        "firstName": "Emulator",
        "lastName": "Owner",
        "email": "owner@example.test",
        "image": None,
        "allowImpersonation": False,
        "twoFactorEnabled": False,
        "stripeCustomerId": None,
        "stripeSubscriptionId": None,
        "serversQuantity": 0,
        "isEnterpriseCloud": False,
        "sendInvoiceNotifications": False,
        "apiKeys": [
            {
                "id": s.user_id,
                "name": "emulator",
                "prefix": None,
                "enabled": True,
                "expiresAt": None,
                "createdAt": s.iso(0.0),
            }
        ],
    }
    return {
        "id": s.user_id,
        "organizationId": s.organization_id,
        "userId": s.user_id,
        "role": "owner",
        "createdAt": s.iso(0.0),
        "teamId": None,
        "isDefault": True,
        **dict.fromkeys(flags, False),
        **{f"accessed{name}": ids for name, ids in accessed.items()},
        "user": user,
    }


def _q(model: type[i.Input], handler: Handler) -> Procedure:
    return Procedure("GET", model, handler)


def _m(model: type[i.Input], handler: Handler) -> Procedure:
    return Procedure("POST", model, handler)


PROCEDURES: dict[str, Procedure] = {
    "project.all": _q(i.NoInput, _project_all),
    "project.one": _q(i.ProjectId, _project_one),
    "project.search": _q(i.ProjectSearch, _project_search),
    "project.create": _m(i.ProjectCreate, _project_create),
    "environment.byProjectId": _q(i.ProjectIdLoose, _environment_by_project),
    "environment.one": _q(i.EnvironmentId, _environment_one),
    "environment.create": _m(i.EnvironmentCreate, _environment_create),
    "environment.remove": _m(i.EnvironmentId, _environment_remove),
    "application.create": _m(i.ApplicationCreate, _application_create),
    "application.one": _q(i.ApplicationId, _application_one),
    "application.update": _m(i.ApplicationUpdate, _application_update),
    "application.delete": _m(i.ApplicationId, _application_delete),
    "application.saveEnvironment": _m(i.ApplicationSaveEnvironment, _application_save_environment),
    "application.saveDockerProvider": _m(
        i.ApplicationSaveDockerProvider, _application_save_docker_provider
    ),
    "application.deploy": _m(i.ApplicationDeploy, _application_deploy),
    "application.redeploy": _m(i.ApplicationDeploy, _application_redeploy),
    "application.stop": _m(i.ApplicationId, _application_stop),
    "application.start": _m(i.ApplicationId, _application_start),
    "compose.create": _m(i.ComposeCreate, _compose_create),
    "compose.one": _q(i.ComposeId, _compose_one),
    "compose.update": _m(i.ComposeUpdate, _compose_update),
    "compose.delete": _m(i.ComposeDelete, _compose_delete),
    "compose.saveEnvironment": _m(i.ComposeSaveEnvironment, _compose_save_environment),
    "compose.deploy": _m(i.ComposeDeploy, _compose_deploy),
    "domain.byApplicationId": _q(i.ApplicationId, _domain_by_application),
    "domain.byComposeId": _q(i.ComposeId, _domain_by_compose),
    "domain.one": _q(i.DomainId, _domain_one),
    "domain.create": _m(i.DomainCreate, _domain_create),
    "domain.update": _m(i.DomainUpdate, _domain_update),
    "domain.delete": _m(i.DomainId, _domain_delete),
    "deployment.all": _q(i.ApplicationId, _deployment_all),
    "deployment.allByCompose": _q(i.ComposeId, _deployment_all_by_compose),
    "deployment.readLogs": _q(i.DeploymentLogs, _deployment_read_logs),
    "server.all": _q(i.NoInput, _server_all),
    "user.get": _q(i.NoInput, _user_get),
}
