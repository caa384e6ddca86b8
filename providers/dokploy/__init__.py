"""Dokploy provider: async client, typed models, env-file handling and an emulator."""

from providers.dokploy.client import DokployClient
from providers.dokploy.config import DokployConfig
from providers.dokploy.deploy import deploy_and_wait
from providers.dokploy.ensure import (
    AmbiguousName,
    ProjectIndex,
    ensure_application,
    ensure_compose,
    ensure_environment,
    ensure_project,
)
from providers.dokploy.errors import (
    DeployTimeout,
    DokployAccessDenied,
    DokployConflict,
    DokployConnectError,
    DokployError,
    DokployForbidden,
    DokployNotFound,
    DokployRateLimited,
    DokployTimeout,
    DokployTransientError,
    DokployUnauthorized,
    DokployValidationError,
    ValidationIssue,
)
from providers.dokploy.models import (
    Application,
    Compose,
    Deployment,
    Domain,
    Environment,
    Project,
    ProjectCreated,
    Server,
)

__all__ = [
    "AmbiguousName",
    "Application",
    "Compose",
    "DeployTimeout",
    "Deployment",
    "DokployAccessDenied",
    "DokployClient",
    "DokployConfig",
    "DokployConflict",
    "DokployConnectError",
    "DokployError",
    "DokployForbidden",
    "DokployNotFound",
    "DokployRateLimited",
    "DokployTimeout",
    "DokployTransientError",
    "DokployUnauthorized",
    "DokployValidationError",
    "Domain",
    "Environment",
    "Project",
    "ProjectCreated",
    "ProjectIndex",
    "Server",
    "ValidationIssue",
    "deploy_and_wait",
    "ensure_application",
    "ensure_compose",
    "ensure_environment",
    "ensure_project",
]
