"""Runner lanes from desired state: one lane per slot of a RunnerPool, `runner:<pool>/<slot>`.

Pure: the fleet in, lanes out. A pool has slots 1..count.max; how many of them should hold a
runner right now is decided by the diff from what it observes (`target_count`). A runner's
name is `setpoint-<pool>-<slot>`: unique per pool, carrying the lane, and parsed back
unambiguously (the slot is the digits after the last hyphen).
"""

from __future__ import annotations

from dataclasses import dataclass

from desired_state.host import HostSpec
from desired_state.runner_pool import RunnerPoolSpec
from providers.github.config import PUBLIC_WEB_URL
from reconciler.core.plans import lane_key, name_of_lane
from reconciler.fleet import DesiredFleet

KIND = "runner"
MANAGED_LABEL = "setpoint-managed"
POOL_LABEL_PREFIX = "setpoint-pool:"
NAME_PREFIX = "setpoint-"
# A draining runner keeps only these labels, so no workflow asking for the pool's labels gets
# it (GitHub's read-only labels, self-hosted and the OS, cannot be taken away).
DRAINING_LABEL = "setpoint-draining"


def cordoned_labels(pool: str) -> list[str]:
    return [MANAGED_LABEL, f"{POOL_LABEL_PREFIX}{pool}", DRAINING_LABEL]


@dataclass(frozen=True)
class PoolView:
    """One RunnerPool with the Host it names (None: no such Host in desired state)."""

    name: str
    spec: RunnerPoolSpec
    generation: int
    host: HostSpec | None
    # The GitHub the runners register with, from the configured API URL (Enterprise too).
    web_url: str = PUBLIC_WEB_URL

    @property
    def scope(self) -> str:
        """`owner/repo` for a repository pool, the organization for an organization pool."""
        if self.spec.scope == "repository":
            return str(self.spec.repository)
        return str(self.spec.organization)

    @property
    def repositories(self) -> list[str]:
        """The repositories the pool's runners serve."""
        if self.spec.scope == "repository":
            return [str(self.spec.repository)]
        return [str(r) for r in self.spec.allowed_repositories]

    @property
    def labels(self) -> tuple[str, ...]:
        return canonical_labels(self.name, self.spec.labels)

    @property
    def github_url(self) -> str:
        return f"{self.web_url}/{self.scope}"


@dataclass(frozen=True)
class RunnerLane:
    lane: str
    pool: PoolView
    slot: int

    @property
    def name(self) -> str:
        return runner_name(self.pool.name, self.slot)


def canonical_labels(pool: str, labels: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """What every runner Setpoint makes for `pool` carries: ownership labels first."""
    return tuple(dict.fromkeys([MANAGED_LABEL, f"{POOL_LABEL_PREFIX}{pool}", *labels]))


def runner_name(pool: str, slot: int) -> str:
    return f"{NAME_PREFIX}{pool}-{slot}"


def slot_lane(pool: str, slot: int) -> str:
    return lane_key(KIND, f"{pool}/{slot}")


def pool_and_slot(lane: str) -> tuple[str, int]:
    pool, _, slot = name_of_lane(lane).rpartition("/")
    return pool, int(slot) if slot.isdigit() else 0


def lane_of_runner_name(name: str) -> str | None:
    """The lane a runner name belongs to, or None for a name Setpoint never gives."""
    if not name.startswith(NAME_PREFIX):
        return None
    pool, _, slot = name[len(NAME_PREFIX) :].rpartition("-")
    return slot_lane(pool, int(slot)) if pool and slot.isdigit() else None


def release_of(image: str) -> tuple[int, ...] | None:
    """The runner release an image tag names (`...actions-runner:2.321.0`), if it names one."""
    tag = image.split("@", 1)[0].rpartition(":")[2]
    parts = tag.removeprefix("v").split(".")
    return (
        tuple(int(p) for p in parts) if len(parts) == 3 and all(map(str.isdigit, parts)) else None
    )


def outdated_note(pool: PoolView, current: str | None) -> str | None:
    """A note for a pool whose runner image is older than the current runner release."""
    have, want = release_of(str(pool.spec.image)), release_of(f":{current}") if current else None
    if have is None or want is None or have >= want:
        return None
    return (
        f"RunnerPool {pool.name} runs runner {'.'.join(map(str, have))}, older than the "
        f"current release {current}: GitHub stops giving jobs to outdated runners; update "
        "spec.image"
    )


def pools_of(fleet: DesiredFleet, web_url: str = PUBLIC_WEB_URL) -> dict[str, PoolView]:
    hosts = {d.name: d.spec for d in fleet.of_kind("Host") if isinstance(d.spec, HostSpec)}
    return {
        d.name: PoolView(
            name=d.name,
            spec=d.spec,
            generation=fleet.generations[d.key],
            host=hosts.get(d.spec.host),
            web_url=web_url,
        )
        for d in fleet.of_kind("RunnerPool")
        if isinstance(d.spec, RunnerPoolSpec)
    }


def runner_lanes(pools: dict[str, PoolView]) -> dict[str, RunnerLane]:
    return {
        slot_lane(pool.name, slot): RunnerLane(slot_lane(pool.name, slot), pool, slot)
        for pool in pools.values()
        for slot in range(1, pool.spec.count.max + 1)
    }
