"""What the observer saw of one product lane in Dokploy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.records.ownership import Owned


@dataclass(frozen=True)
class ObservedDomain:
    domain_id: str
    host: str
    path: str
    port: int | None
    https: bool
    service: str | None

    @property
    def key(self) -> str:
        return f"{self.host}{self.path}"


@dataclass(frozen=True)
class ObservedService:
    type: str  # application | compose
    id: str
    name: str
    environment_id: str | None
    image: str | None
    compose_file: str | None
    env_text: str = field(repr=False)
    replicas: int | None
    domains: tuple[ObservedDomain, ...]
    latest_deployment: str | None  # status of the newest deployment, None if never deployed
    server_id: str | None = None

    def fingerprint_fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "compose_file": self.compose_file,
            "env": self.env_text,
            "replicas": self.replicas,
            "domains": sorted(
                (d.domain_id, d.host, d.path, d.port, d.https, d.service) for d in self.domains
            ),
        }


@dataclass
class ObservedProductLane:
    project_id: str | None = None
    environment_id: str | None = None
    server_id: str | None = None  # of the Dokploy server the lane names, when it names one
    service: ObservedService | None = None
    owned: Owned | None = None
    # Unowned services with the lane's name: reported, never touched.
    clashes: list[str] = field(default_factory=list)
    # The registry says Setpoint owns a service that Dokploy confirmed (by id) is gone.
    vanished: Owned | None = None


def project_ref(project: str) -> str:
    return f"dokploy:project/{project}"


def environment_ref(project: str, environment: str) -> str:
    return f"dokploy:environment/{project}/{environment}"


def service_ref(project: str, environment: str, service: str) -> str:
    return f"dokploy:service/{project}/{environment}/{service}"
