"""Input schemas of the emulated procedures, mirroring Dokploy's zod schemas (v0.30).

Strict types (zod does not coerce), unknown keys stripped, required keys as in
tests/contracts/dokploy-openapi.v0.30.json; a test checks the two agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]
# Dokploy's domain schema says `z.string().min(1, { message: "Add a hostname" })`.
Host = Annotated[str, Field(min_length=1, json_schema_extra={"zodMessage": "Add a hostname"})]
AppName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9._-]+$")]
Port = Annotated[int | float, Field(ge=1, le=65535)]
CertificateType = Literal["letsencrypt", "none", "custom"]


class Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class Updates(Input):
    """Update schemas accept most columns of the row; the extra keys become the patch."""

    model_config = ConfigDict(strict=True, extra="allow")


class NoInput(Input):
    pass


class ProjectId(Input):
    projectId: NonEmpty


class ProjectIdLoose(Input):
    projectId: str


class EnvironmentId(Input):
    environmentId: NonEmpty


class ApplicationId(Input):
    applicationId: NonEmpty


class ComposeId(Input):
    composeId: NonEmpty


class DeploymentLogs(Input):
    """`deployment.readLogs`; `tail` (1..10000, default 100) arrives as query text, and the
    emulator reads it leniently, as trpc-to-openapi coerces query numbers."""

    deploymentId: NonEmpty
    tail: str | None = None


class DomainId(Input):
    domainId: NonEmpty


class ProjectCreate(Input):
    name: NonEmpty
    description: str | None = None
    env: str | None = None


class ProjectSearch(Input):
    """`project.search`: every filter optional; `limit` (1..100, default 20) and `offset`
    arrive as query text, read leniently as trpc-to-openapi coerces query numbers."""

    q: str | None = None
    name: str | None = None
    description: str | None = None
    limit: str | None = None
    offset: str | None = None


class EnvironmentCreate(Input):
    name: NonEmpty
    description: str | None = None
    projectId: NonEmpty


class ApplicationCreate(Input):
    name: NonEmpty
    appName: AppName | None = None
    description: str | None = None
    environmentId: str
    serverId: str | None = None
    sourceType: (
        Literal["github", "docker", "git", "gitlab", "bitbucket", "gitea", "drop"] | None
    ) = None


class ApplicationUpdate(Updates):
    applicationId: NonEmpty
    name: NonEmpty | None = None
    appName: AppName | None = None


class ApplicationSaveEnvironment(Input):
    applicationId: str
    env: str | None
    buildArgs: str | None
    buildSecrets: str | None
    createEnvFile: bool = Field(json_schema_extra={"zodNonoptional": True})


class ApplicationSaveDockerProvider(Input):
    dockerImage: str | None
    applicationId: str
    username: str | None
    password: str | None
    registryUrl: str | None


class ApplicationDeploy(Input):
    applicationId: NonEmpty
    title: str | None = None
    description: str | None = None


class ComposeCreate(Input):
    name: NonEmpty
    description: str | None = None
    environmentId: str
    composeType: Literal["docker-compose", "stack"] | None = None
    appName: AppName | None = None
    serverId: str | None = None
    composeFile: str | None = None
    sourceType: Literal["git", "github", "gitlab", "bitbucket", "gitea", "raw"] | None = None


class ComposeUpdate(Updates):
    composeId: str
    name: NonEmpty | None = None
    appName: AppName | None = None


class ComposeDelete(Input):
    composeId: NonEmpty
    deleteVolumes: bool


class ComposeSaveEnvironment(Input):
    composeId: str
    env: str | None
    createEnvFile: bool | None = None


class ComposeDeploy(Input):
    composeId: NonEmpty
    title: str | None = None
    description: str | None = None


class DomainFields(Input):
    host: Host
    path: NonEmpty | None = None
    port: Port | None = None
    customEntrypoint: str | None = None
    https: bool | None = None
    certificateType: CertificateType | None = None
    customCertResolver: str | None = None
    serviceName: str | None = None
    domainType: Literal["compose", "application", "preview"] | None = None
    internalPath: str | None = None
    stripPath: bool | None = None
    middlewares: list[str] | None = None
    forwardAuthEnabled: bool | None = None


class DomainCreate(DomainFields):
    applicationId: str | None = None
    composeId: str | None = None
    previewDeploymentId: str | None = None


class DomainUpdate(DomainFields):
    domainId: str
    enabled: bool | None = None


def given(model: Input) -> dict[str, Any]:
    """The keys the caller actually sent (zod drops absent optional keys, so do we)."""
    return model.model_dump(exclude_unset=True)
