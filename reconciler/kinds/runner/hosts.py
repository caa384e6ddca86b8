"""Which host adapter serves which `Host.type`: the one table to extend for a new host type.

An entry names the provider it needs from the runtime (`runtime.providers[provider]`) and a
builder that makes the adapter for one Host from that provider. A Host whose type has no
entry, or whose provider is not configured, gets no adapter, and its pools are blocked with
a typed blocker that says so.

To add a host type, add one line to `HOST_ADAPTERS`, as `ssh` is:
`"ssh": AdapterEntry("ssh", build_ssh_host)` with `build_ssh_host(provider, name, spec)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from desired_state.host import HostSpec
from providers.hosts.base import HostAdapter

AdapterBuilder = Callable[[object, str, HostSpec], HostAdapter]


@dataclass(frozen=True)
class AdapterEntry:
    provider: str  # the runtime provider the builder is given
    build: AdapterBuilder


def build_dokploy_host(provider: object, name: str, spec: HostSpec) -> HostAdapter:
    from providers.dokploy.client import DokployClient
    from providers.hosts.dokploy_container import DokployContainerHost

    if not isinstance(provider, DokployClient):
        raise TypeError(f"provider for host {name} is a {type(provider).__name__}")
    return DokployContainerHost(provider, name, spec.dokploy_server or name)


def build_ssh_host(provider: object, name: str, spec: HostSpec) -> HostAdapter:
    from providers.hosts.ssh_config import SshHostConfig
    from providers.hosts.ssh_systemd import SshSystemdHost

    if not isinstance(provider, SshHostConfig):
        raise TypeError(f"provider for host {name} is a {type(provider).__name__}")
    if spec.ssh is None:  # the Host model requires it for type ssh; a guard, not a rule
        raise ValueError(f"host {name} has type ssh but no ssh endpoint")
    return SshSystemdHost(
        name, address=spec.ssh.address, user=spec.ssh.user, port=spec.ssh.port, config=provider
    )


HOST_ADAPTERS: Mapping[str, AdapterEntry] = {
    "dokploy-server": AdapterEntry("dokploy", build_dokploy_host),
    # The "ssh" provider is the SSH settings (SshHostConfig): key, known hosts, timeouts.
    "ssh": AdapterEntry("ssh", build_ssh_host),
}


def build_adapters(
    hosts: Mapping[str, HostSpec],
    providers: Mapping[str, object],
    table: Mapping[str, AdapterEntry] = HOST_ADAPTERS,
) -> tuple[dict[str, HostAdapter], dict[str, str]]:
    """(adapters by host name, why not by host name) for the hosts given."""
    adapters: dict[str, HostAdapter] = {}
    missing: dict[str, str] = {}
    for name, spec in hosts.items():
        entry = table.get(spec.type)
        if entry is None:
            missing[name] = (
                f"no host adapter handles Host type {spec.type!r} in this Setpoint "
                f"(known: {', '.join(sorted(table)) or 'none'})"
            )
        elif entry.provider not in providers:
            missing[name] = (
                f"Host type {spec.type!r} needs provider {entry.provider!r}, not configured"
            )
        else:
            adapters[name] = entry.build(providers[entry.provider], name, spec)
    return adapters, missing
