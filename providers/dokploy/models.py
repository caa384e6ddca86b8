"""Typed views of Dokploy responses.

Dokploy rows carry 50 to 120 columns and grow with every release; we keep the fields the
reconciler reads and ignore the rest. Nested projections (e.g. applications inside
`project.all`) carry only a few columns, so everything beyond the id has a default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

TERMINAL_DEPLOYMENT_STATUSES = frozenset({"done", "error", "cancelled"})


class DokployModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, alias_generator=to_camel, frozen=False
    )


class Domain(DokployModel):
    domain_id: str
    host: str
    path: str | None = "/"
    port: int | None = None
    https: bool = False
    certificate_type: str = "none"
    service_name: str | None = None
    domain_type: str | None = None
    application_id: str | None = None
    compose_id: str | None = None
    internal_path: str | None = None
    strip_path: bool = False
    enabled: bool | None = None
    created_at: str | None = None


class Deployment(DokployModel):
    deployment_id: str
    status: str
    title: str | None = None
    description: str | None = None
    application_id: str | None = None
    compose_id: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error_message: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_DEPLOYMENT_STATUSES


class Application(DokployModel):
    application_id: str
    name: str
    app_name: str | None = None
    description: str | None = None
    environment_id: str | None = None
    source_type: str | None = None
    docker_image: str | None = None
    registry_url: str | None = None
    username: str | None = None
    # Env text holds secret values: excluded from repr so a logged model cannot leak them.
    env: str | None = Field(default=None, repr=False)
    build_args: str | None = Field(default=None, repr=False)
    build_secrets: str | None = Field(default=None, repr=False)
    # None: the answer did not say (a nested projection); Dokploy's default is true.
    create_env_file: bool | None = None
    application_status: str | None = None
    server_id: str | None = None
    replicas: int | None = None
    created_at: str | None = None
    domains: list[Domain] = Field(default_factory=list)
    deployments: list[Deployment] = Field(default_factory=list)


class Compose(DokployModel):
    compose_id: str
    name: str
    app_name: str | None = None
    description: str | None = None
    environment_id: str | None = None
    source_type: str | None = None
    compose_type: str | None = None
    compose_file: str | None = Field(default=None, repr=False)
    env: str | None = Field(default=None, repr=False)
    create_env_file: bool | None = None
    compose_status: str | None = None
    server_id: str | None = None
    created_at: str | None = None
    domains: list[Domain] = Field(default_factory=list)
    deployments: list[Deployment] = Field(default_factory=list)


class Environment(DokployModel):
    environment_id: str
    name: str
    project_id: str | None = None
    description: str | None = None
    # Dokploy marks the protected default environment (`production`) with isDefault.
    is_default: bool = False
    applications: list[Application] = Field(default_factory=list)
    compose: list[Compose] = Field(default_factory=list)
    # Databases, read only to know whether the environment holds anything (rows kept raw).
    libsql: list[dict[str, Any]] = Field(default_factory=list)
    mariadb: list[dict[str, Any]] = Field(default_factory=list)
    mongo: list[dict[str, Any]] = Field(default_factory=list)
    mysql: list[dict[str, Any]] = Field(default_factory=list)
    postgres: list[dict[str, Any]] = Field(default_factory=list)
    redis: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def service_ids(self) -> frozenset[str]:
        """Its applications' and compose services' ids."""
        ids = [a.application_id for a in self.applications]
        return frozenset(ids + [c.compose_id for c in self.compose])

    @property
    def database_count(self) -> int:
        return sum(
            map(len, (self.libsql, self.mariadb, self.mongo, self.mysql, self.postgres, self.redis))
        )

    @model_validator(mode="before")
    @classmethod
    def _project_id_from_project(cls, data: Any) -> Any:
        # `environment.byProjectId` rows carry no projectId, only the project itself.
        if isinstance(data, dict) and data.get("projectId") is None:
            project = data.get("project")
            if isinstance(project, dict) and isinstance(project.get("projectId"), str):
                return {**data, "projectId": project["projectId"]}
        return data

    @model_validator(mode="after")
    def _link_children(self) -> Environment:
        # Nested projections omit the parent id; fill it so callers need not track nesting.
        for app in self.applications:
            if app.environment_id is None:
                app.environment_id = self.environment_id
        for comp in self.compose:
            if comp.environment_id is None:
                comp.environment_id = self.environment_id
        return self


class Project(DokployModel):
    project_id: str
    name: str
    description: str | None = None
    created_at: str | None = None
    environments: list[Environment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _link_children(self) -> Project:
        for env in self.environments:
            if env.project_id is None:
                env.project_id = self.project_id
        return self


class ProjectPage(DokployModel):
    """`project.search` answers one page of project rows, without their environments, and
    how many matched in all."""

    items: list[Project]
    total: int


class ProjectCreated(DokployModel):
    """`project.create` answers the project and the default environment it made."""

    project: Project
    environment: Environment


class Server(DokployModel):
    server_id: str
    name: str
    ip_address: str | None = None
    server_status: str | None = None
    description: str | None = None


class User(DokployModel):
    """What preflight learns about the key's owner; only ids, never credentials."""

    id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    role: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_any(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {}
