"""Settings of the SSH and systemd host adapter, read from `SETPOINT_SSH_*` environment
variables. The address, user and port of each host come from its `Host` object; what is
the same for every SSH host (the key, the known hosts, the timeouts) is set here."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SshHostConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_SSH_", extra="ignore")

    key_file: Path | None = Field(
        default=None,
        description="file holding the private key Setpoint logs in to SSH hosts with (else the "
        "SSH agent and ~/.ssh/id_*)",
    )
    known_hosts_file: Path | None = Field(
        default=None,
        description="known_hosts file that SSH host keys are checked against; a host not in "
        "it, or with another key, is refused (checking cannot be turned off). Setting it is "
        "the opt-in to SSH hosts: without it, none is reached",
    )
    connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="SSH connect, key exchange and login, seconds"
    )
    command_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="one command or file transfer on an SSH host (`systemctl start` waits for "
        "the unit to start), seconds",
    )
    retry_attempts: int = Field(
        default=3,
        ge=1,
        description="attempts at reaching an SSH host; a step that may have run is repeated "
        "only where repeating it is harmless",
    )
