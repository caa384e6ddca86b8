"""Response shapes of the emulated reads, matched to the live captures' nesting."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.dokploy.emulator.rows import (
    APPLICATION_ONE_RELATIONS,
    COMPOSE_ONE_RELATIONS,
    ENVIRONMENT_SERVICE_LISTS,
)
from providers.dokploy.emulator.state import EmulatorState

_APP_SUMMARY = (
    "appName",
    "applicationId",
    "applicationStatus",
    "createdAt",
    "description",
    "icon",
    "name",
    "serverId",
)
_COMPOSE_SUMMARY = (
    "appName",
    "composeId",
    "composeStatus",
    "createdAt",
    "description",
    "icon",
    "name",
    "serverId",
)


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: row.get(k) for k in keys}


@dataclass(frozen=True)
class Listing:
    """Environments by project and services by environment, each in creation order, from
    one pass over the state, so `project.all` costs no scan per project or environment."""

    environments: dict[str, list[dict[str, Any]]]
    applications: dict[str, list[dict[str, Any]]]
    composes: dict[str, list[dict[str, Any]]]

    @classmethod
    def of(cls, state: EmulatorState) -> Listing:
        def grouped(rows: Iterable[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                out.setdefault(row[key], []).append(row)
            return out

        return cls(
            environments=grouped(state.environments.values(), "projectId"),
            applications=grouped(state.applications.values(), "environmentId"),
            composes=grouped(state.composes.values(), "environmentId"),
        )


def environment_view(
    state: EmulatorState,
    env: dict[str, Any],
    *,
    sparse: bool,
    listing: Listing | None = None,
) -> dict[str, Any]:
    """An environment with its services: `project.all` shows only id, name and status
    of each service, `project.one` and `environment.*` a little more."""
    env_id = env["environmentId"]
    listing = listing or Listing.of(state)
    apps = listing.applications.get(env_id, [])
    composes = listing.composes.get(env_id, [])
    if sparse:
        app_rows = [_pick(a, ("applicationId", "applicationStatus", "name")) for a in apps]
        compose_rows = [_pick(c, ("composeId", "composeStatus", "name")) for c in composes]
        out: dict[str, Any] = {
            "environmentId": env_id,
            "name": env["name"],
            "isDefault": env["isDefault"],
        }
    else:
        app_rows = [{**_pick(a, _APP_SUMMARY), "server": None} for a in apps]
        compose_rows = [{**_pick(c, _COMPOSE_SUMMARY), "server": None} for c in composes]
        out = copy.deepcopy(env)
    out["applications"] = app_rows
    out["compose"] = compose_rows
    for name in ENVIRONMENT_SERVICE_LISTS:
        out[name] = []
    return dict(sorted(out.items()))


def project_view(
    state: EmulatorState,
    project: dict[str, Any],
    *,
    sparse: bool,
    listing: Listing | None = None,
) -> dict[str, Any]:
    out = copy.deepcopy(project)
    listing = listing or Listing.of(state)
    envs = listing.environments.get(project["projectId"], [])
    out["environments"] = [environment_view(state, e, sparse=sparse, listing=listing) for e in envs]
    out["projectTags"] = []
    return dict(sorted(out.items()))


def environment_one(state: EmulatorState, env: dict[str, Any]) -> dict[str, Any]:
    """`environment.one`: the row without `createdAt`, services without `appName`, and the
    project it belongs to."""
    out = environment_view(state, env, sparse=False)
    out.pop("createdAt", None)
    for app in out["applications"]:
        app.pop("appName", None)
    out["project"] = copy.deepcopy(state.projects[env["projectId"]])
    return out


def environment_of_project(state: EmulatorState, env: dict[str, Any]) -> dict[str, Any]:
    """An item of `environment.byProjectId`: no `createdAt`, `env` or `projectId`, but the
    project itself."""
    out = environment_view(state, env, sparse=False)
    for key in ("createdAt", "env", "projectId"):
        out.pop(key, None)
    out["project"] = copy.deepcopy(state.projects[env["projectId"]])
    return out


def _environment_with_project(state: EmulatorState, environment_id: str) -> dict[str, Any]:
    env = copy.deepcopy(state.environments[environment_id])
    env["project"] = copy.deepcopy(state.projects[env["projectId"]])
    return env


def application_one(state: EmulatorState, application_id: str) -> dict[str, Any]:
    row = copy.deepcopy(state.applications[application_id])
    row.update(copy.deepcopy(APPLICATION_ONE_RELATIONS))
    row["domains"] = [
        copy.deepcopy(d) for d in state.domains.values() if d["applicationId"] == application_id
    ]
    # Inside the service, deployments are listed oldest first (deployment.all: newest first).
    row["deployments"] = state.deployments(application_id)[::-1]
    row["environment"] = _environment_with_project(state, row["environmentId"])
    return dict(sorted(row.items()))


def compose_one(state: EmulatorState, compose_id: str) -> dict[str, Any]:
    row = copy.deepcopy(state.composes[compose_id])
    row.update(copy.deepcopy(COMPOSE_ONE_RELATIONS))
    row["domains"] = [
        copy.deepcopy(d) for d in state.domains.values() if d["composeId"] == compose_id
    ]
    row["deployments"] = state.deployments(compose_id)[::-1]
    row["environment"] = _environment_with_project(state, row["environmentId"])
    return dict(sorted(row.items()))


def domain_with_service(state: EmulatorState, domain: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(domain)
    if domain.get("composeId"):
        compose = state.composes.get(domain["composeId"])
        out["compose"] = _pick(compose, ("appName", "composeId", "name")) if compose else None
    else:
        app = state.applications.get(domain.get("applicationId") or "")
        out["application"] = _pick(app, ("appName", "applicationId", "name")) if app else None
    return dict(sorted(out.items()))
