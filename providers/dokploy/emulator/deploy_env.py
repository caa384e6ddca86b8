"""What a deployed service's containers get from its env text, as Dokploy v0.30 makes it.

At deploy, Dokploy parses the service's env text (and its project's and environment's) with
npm `dotenv` 16.4.5 (`desired_state.dotenv.parse`, the port), then replaces
`${{project.NAME}}`, `${{environment.NAME}}` and `${{NAME}}` (another variable of the same
service) in each value; an unknown name aborts the deploy ("Invalid project environment
variable: project.DB_URL", recorded on a real v0.30.2 server). The emulator does the same
when it deploys, so text whose spelling the parser changes shows in what the service runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from desired_state.dotenv import parse

_LINE_CHAR = "[^\n\r\u2028\u2029]"  # JavaScript's `.`
_REFERENCES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "project",
        re.compile(rf"\$\{{\{{project\.({_LINE_CHAR}*?)\}}\}}"),
        "Invalid project environment variable: project.{}",
    ),
    (
        "environment",
        re.compile(rf"\$\{{\{{environment\.({_LINE_CHAR}*?)\}}\}}"),
        "Invalid environment variable: environment.{}",
    ),
    (
        "service",
        re.compile(rf"\$\{{\{{({_LINE_CHAR}*?)\}}\}}"),
        "Invalid service environment variable: {}",
    ),
)


class DeployEnvError(Exception):
    """A reference to a name the project, environment or service does not define."""


def container_env(
    service_env: str | None, project_env: str | None, environment_env: str | None
) -> dict[str, str]:
    """The service's variables as its containers get them; raises DeployEnvError."""
    scopes = {
        "project": parse(project_env),
        "environment": parse(environment_env),
        "service": parse(service_env),
    }
    return {key: _resolved(value, scopes) for key, value in scopes["service"].items()}


def _resolved(value: str, scopes: Mapping[str, Mapping[str, str]]) -> str:
    for scope, pattern, message in _REFERENCES:
        value = pattern.sub(_lookup(scopes[scope], message), value)
    return value


def _lookup(names: Mapping[str, str], message: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            raise DeployEnvError(message.format(name))
        return names[name]

    return replace


def deployed_env(
    projects: Mapping[str, Mapping[str, Any]],
    environments: Mapping[str, Mapping[str, Any]],
    row: Mapping[str, Any],
) -> tuple[dict[str, str] | None, str | None]:
    """(the containers' variables, None), or (None, why the deploy aborts)."""
    environment = environments.get(str(row.get("environmentId"))) or {}
    project = projects.get(str(environment.get("projectId"))) or {}
    try:
        return container_env(row.get("env"), project.get("env"), environment.get("env")), None
    except DeployEnvError as exc:
        return None, str(exc)
