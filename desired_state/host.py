"""`Host`: a place runners may live: a Dokploy server, or an SSH host with systemd."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from desired_state.base import SpecModel
from desired_state.rules import host_rules, raise_rules


class SshEndpoint(SpecModel):
    address: str
    user: str = "setpoint"
    port: int = Field(default=22, ge=1, le=65535)


class HostSpec(SpecModel):
    type: Literal["dokploy-server", "ssh"]
    dokploy_server: str | None = Field(default=None, description="Dokploy server name")
    ssh: SshEndpoint | None = None
    approved: bool = Field(default=False, description="runners are placed only on approved hosts")
    max_runners: int = Field(default=4, ge=0, le=256)
    labels: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _endpoint_matches_type(self) -> HostSpec:
        raise_rules(host_rules(self.model_dump(by_alias=True)))
        return self
