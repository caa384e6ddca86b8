"""The runner lane kind: wires pools, hosts, observer, differ and executor together.

Providers: GitHub (`RunnersApi`) for registrations, and a host adapter per Host, built from
the table in `hosts.py`. The kind never acts on a runner it does not own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from desired_state.host import HostSpec
from providers.github.runners import RunnersApi
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.notices import LaneNotices
from reconciler.core.plans import BlastRadiusGuard, object_fingerprint
from reconciler.core.reasons import BlockerReason
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import LaneDiff, Observation, OpSpec, PreflightFailure
from reconciler.kinds.github_access import github_preflight
from reconciler.kinds.runner.diff import RunnerRules, diff_runner_lane, wanted
from reconciler.kinds.runner.execute import RunnerExecutor
from reconciler.kinds.runner.hosts import HOST_ADAPTERS, AdapterEntry, build_adapters
from reconciler.kinds.runner.lanes import (
    KIND,
    outdated_note,
    pool_and_slot,
    pools_of,
    runner_lanes,
    slot_lane,
)
from reconciler.kinds.runner.observe import RunnerObserver, Site
from reconciler.kinds.runner.observed import ObservedRunnerLane
from reconciler.kinds.runner.ops import RUNNER_OPS
from reconciler.kinds.runner.policy import RunnerLanePolicy
from reconciler.kinds.runner.reasons import RUNNER_NOTICES, RUNNER_REASONS
from reconciler.kinds.runner.register import RunnerTimings
from reconciler.runtime import Runtime
from reconciler.settings import Settings


@dataclass
class RunnerKind:
    fleet: DesiredFleet
    owned: OwnershipSnapshot
    github: RunnersApi
    providers: Mapping[str, object]
    salt: str
    settings: Settings
    now: float = field(kw_only=True)  # the runtime's clock at the pass: no default
    guard: BlastRadiusGuard = field(default_factory=BlastRadiusGuard)
    adapter_table: Mapping[str, AdapterEntry] = field(default_factory=lambda: HOST_ADAPTERS)
    name: str = KIND
    ops: Mapping[str, OpSpec] = field(default_factory=lambda: RUNNER_OPS)
    reasons: Mapping[str, BlockerReason] = field(default_factory=lambda: RUNNER_REASONS)
    notices: LaneNotices = RUNNER_NOTICES

    def __post_init__(self) -> None:
        self.pools = pools_of(self.fleet, self.github.web_url)
        self.desired = runner_lanes(self.pools)
        self.removed = sorted(self.owned.lanes_of_kind(self.name) - set(self.desired))
        hosts = {d.name: d.spec for d in self.fleet.of_kind("Host") if isinstance(d.spec, HostSpec)}
        self.adapters, self.missing = build_adapters(hosts, self.providers, self.adapter_table)
        self.rules = RunnerRules(
            offline_grace=self.settings.runner_offline_grace_seconds,
            orphan_grace=self.settings.runner_orphan_grace_seconds,
        )

    def lanes(self) -> list[str]:
        return sorted({*self.desired, *self.removed})

    def policy(self, lane: str) -> RunnerLanePolicy:
        desired = self.desired.get(lane)
        if desired is None:
            return RunnerLanePolicy(generation=None)
        return RunnerLanePolicy(
            generation=desired.pool.generation, allow=frozenset(desired.pool.spec.allow)
        )

    async def preflight(self) -> PreflightFailure | None:
        # Hosts are checked per pool while observing (a host that fails blocks its pools
        # only); a refused GitHub token gates every pool, as a refused Dokploy key gates
        # every product.
        return await github_preflight(self.github)

    def site(self, lane: str) -> Site | None:
        desired = self.desired.get(lane)
        if desired is not None:
            return Site(lane, desired.pool.scope, desired.pool.spec.host, desired.name)
        for owned in self.owned.for_lane(lane):
            facts = owned.facts
            if facts.get("scope") and facts.get("host") and facts.get("name"):
                return Site(lane, str(facts["scope"]), str(facts["host"]), str(facts["name"]))
        return None

    def sites(self, lanes: Sequence[str]) -> list[Site]:
        """The lanes asked for, and every other lane of their pools (for the busy count)."""
        pools = {pool_and_slot(lane)[0] for lane in lanes}
        every = [lane for lane in self.lanes() if pool_and_slot(lane)[0] in pools]
        return [s for s in (self.site(lane) for lane in every) if s is not None]

    async def observe(self, lanes: Sequence[str]) -> Observation:
        observer = RunnerObserver(
            github=self.github,
            adapters=self.adapters,
            missing=self.missing,
            owned=self.owned,
            salt=self.salt,
            now=self.now,
        )
        observation = await observer.observe(self.sites(lanes), set(lanes))
        for lane in lanes:
            desired = self.desired.get(lane)
            if desired is not None and lane in observation.lanes:
                # The Host is another document: revoking its approval makes plans stale.
                host = desired.pool.host.model_dump(mode="json") if desired.pool.host else None
                value = object_fingerprint(self.salt, {"host": host})
                observation.fingerprint(lane, f"desired:Host/{desired.pool.spec.host}", value)
        for pool in sorted({pool_and_slot(lane)[0] for lane in lanes}):
            view = self.pools.get(pool)
            note = outdated_note(view, self.settings.runner_current_release) if view else None
            if note is not None:
                observation.notes.append(f"{slot_lane(pool, 1)}: {note}")
        return observation

    def diff(self, lane: str, observation: Observation) -> LaneDiff:
        seen = observation.lanes.get(lane)
        if not isinstance(seen, ObservedRunnerLane):
            return LaneDiff(lane=lane)  # not observed: its problem blocks it
        # Creates of one pass share the host's room: lanes before this one go first.
        seen = replace(seen, host_runners=seen.host_runners + self._queued(lane, observation))
        return diff_runner_lane(lane, self.desired.get(lane), seen, self.rules)

    def _queued(self, lane: str, observation: Observation) -> int:
        """Lanes on this lane's host, ordered before it, that want a new process."""
        mine = observation.lanes[lane]
        count = 0
        for other in sorted(observation.lanes):
            if other >= lane:
                break
            seen = observation.lanes[other]
            if seen.host == mine.host and seen.process is None:
                count += wanted(self.desired.get(other), seen)
        return count

    def executor(self, runtime: Runtime) -> RunnerExecutor:
        settings = runtime.settings
        return RunnerExecutor(
            github=self.github,
            adapters=self.adapters,
            clock=runtime.clock,
            timings=RunnerTimings(
                online_timeout=settings.runner_online_timeout_seconds,
                poll=min(2.0, settings.deploy_poll_seconds),
                idle_window=settings.runner_idle_window_seconds,
                busy_retry=settings.runner_busy_retry_seconds,
            ),
        )
