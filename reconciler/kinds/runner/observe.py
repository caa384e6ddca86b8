"""Observe runner lanes: GitHub's registrations per scope, joined by name with the processes
each host adapter lists. Reads only.

Fail closed: a scope GitHub cannot list, or a host whose processes cannot be listed, makes an
observation problem for its lanes, never "no runners". An owned registration missing from a
listing counts as gone only when GitHub answers 404 for it read by id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from providers.github.errors import GitHubError, GitHubForbidden, GitHubNotFound
from providers.github.models import RunnerScope
from providers.github.runners import RunnersApi
from providers.hosts.base import HostAdapter, RunnerProcess
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.core.outcomes import Facts
from reconciler.core.plans import ABSENT, object_fingerprint
from reconciler.kinds.base import Observation, ObservationProblem
from reconciler.kinds.runner.lanes import KIND, pool_and_slot
from reconciler.kinds.runner.observed import (
    GITHUB_BUSY,
    GITHUB_STATUS,
    PROCESS_TYPE,
    RUNNER_TYPE,
    ObservedRunnerLane,
    SeenRunner,
    runner_ref,
)
from reconciler.kinds.runner.ops import GITHUB


@dataclass(frozen=True)
class Site:
    """Where a lane's runner lives: GitHub scope, host, and the runner's name."""

    lane: str
    scope: str
    host: str
    name: str


@dataclass
class _Scope:
    runners: dict[str, SeenRunner] = field(default_factory=dict)  # by name
    gone: set[int] = field(default_factory=set)
    problem: str | None = None
    denied: bool = False  # the token works, but not on this scope: `access_denied`


@dataclass
class _Host:
    processes: dict[str, RunnerProcess] = field(default_factory=dict)
    problem: str | None = None  # cannot be read: an observation problem
    unusable: str | None = None  # no adapter, or the host refuses: a blocker


@dataclass
class RunnerObserver:
    github: RunnersApi
    adapters: Mapping[str, HostAdapter]
    missing: Mapping[str, str]  # host -> why it has no adapter
    owned: OwnershipSnapshot
    salt: str
    now: float

    async def observe(self, sites: Sequence[Site], wanted: Collection[str]) -> Observation:
        """`sites` of every lane of the pools concerned (a pool's busy count needs them all);
        only the `wanted` lanes are reported."""
        observation = Observation()
        # One listing per scope and per host, whatever the number of lanes on them.
        scopes = {scope: await self._scope(scope) for scope in sorted({s.scope for s in sites})}
        hosts = {host: await self._host(host) for host in sorted({s.host for s in sites})}
        busy = self._busy_by_pool(sites, scopes, hosts)
        for site in (s for s in sites if s.lane in wanted):
            scope, host = scopes[site.scope], hosts[site.host]
            problem = scope.problem or host.problem
            if problem is not None:
                denied = scope.denied and scope.problem is not None
                observation.problems.append(
                    ObservationProblem(lane=site.lane, reason=problem, access_denied=denied)
                )
                continue
            seen = self._lane(site, scope, host, busy.get(pool_and_slot(site.lane)[0], 0))
            observation.lanes[site.lane] = seen
            self._fingerprint(observation, site, seen)
            self._github_status(observation, seen)
        return observation

    def _github_status(self, observation: Observation, seen: ObservedRunnerLane) -> None:
        """The registration's status on GitHub (online or offline, busy or idle), for the
        runners page: recorded when it differs from what the registry last recorded."""
        runner = seen.runner
        if runner is None:
            return
        ref = runner_ref(runner.id)
        status = {GITHUB_STATUS: runner.status, GITHUB_BUSY: runner.busy}
        owned = self.owned.owner_of(ref)
        if owned is None or any(owned.facts.get(k) != v for k, v in status.items()):
            observation.seen_facts.append(Facts(ref, status))

    def _lane(self, site: Site, scope: _Scope, host: _Host, pool_busy: int) -> ObservedRunnerLane:
        found = scope.runners.get(site.name)
        mine = found if found is not None and found.owner_lane == site.lane else None
        owned = tuple(self.owned.for_lane(site.lane))
        gone = tuple(
            o.ref for o in owned if o.object_type == RUNNER_TYPE and int(o.object_id) in scope.gone
        )
        return ObservedRunnerLane(
            host=site.host,
            scope=site.scope,
            runner=mine if mine is not None and mine.managed else None,
            stranger=found if found is not None and not (mine and mine.managed) else None,
            process=host.processes.get(site.name),
            owned=owned,
            gone=gone,
            pool_busy=pool_busy,
            host_runners=len(host.processes),
            host_problem=host.unusable,
            now=self.now,
        )

    async def _scope(self, scope: str) -> _Scope:
        seen = _Scope()
        try:
            listed = await self.github.list_runners(RunnerScope.parse(scope))
            for runner in listed:
                owner = self.owned.owner_of(runner_ref(runner.id))
                lane = owner.lane if owner is not None and owner.kind == KIND else None
                seen.runners[runner.name] = SeenRunner.of(runner, scope, lane)
            listed_ids = {r.id for r in listed}
            for owned in self.owned.objects:
                if owned.kind == KIND and owned.object_type == RUNNER_TYPE:
                    runner_id = int(owned.object_id)
                    if runner_id not in listed_ids and owned.facts.get("scope") == scope:
                        await self._confirm_gone(scope, runner_id, seen)
        except (GitHubForbidden, GitHubNotFound) as exc:
            # The token works (preflight said so) but not here: a permission it lacks, or a
            # repository it may not see (or that does not exist), which time does not mend.
            seen.problem = f"GitHub refused the token the runners of {scope}: {exc}"
            seen.denied = True
        except (GitHubError, ValueError) as exc:
            seen.problem = f"GitHub runners of {scope} could not be read: {exc}"
        return seen

    async def _confirm_gone(self, scope: str, runner_id: int, seen: _Scope) -> None:
        try:
            await self.github.get_runner(RunnerScope.parse(scope), runner_id)
        except GitHubNotFound:
            seen.gone.add(runner_id)
            return
        # Listed as absent but readable: the listing is not to be trusted.
        raise GitHubError(f"runner {runner_id} is missing from the listing but exists")

    async def _host(self, host: str) -> _Host:
        seen = _Host()
        adapter = self.adapters.get(host)
        if adapter is None:
            seen.unusable = self.missing.get(host, f"no Host named {host} in desired state")
            return seen
        try:
            seen.unusable = await adapter.preflight()
            if seen.unusable is None:
                seen.processes = {p.name: p for p in await adapter.list_processes()}
        except Exception as exc:  # any adapter's failure: fail closed, never "no processes"
            seen.problem = f"host {host} could not be read: {type(exc).__name__}: {exc}"
        owned = self._owned_processes(host)
        if seen.unusable is None and seen.problem is None and not seen.processes and owned:
            seen.problem = (
                f"host {host} lists no runner process, but Setpoint owns {owned} there: "
                "not read as gone"
            )
        return seen

    def _owned_processes(self, host: str) -> int:
        return sum(
            1
            for o in self.owned.objects
            if o.kind == KIND
            and o.object_type == PROCESS_TYPE
            and o.object_id.startswith(f"{host}/")
        )

    def _busy_by_pool(
        self, sites: Sequence[Site], scopes: dict[str, _Scope], hosts: dict[str, _Host]
    ) -> dict[str, int]:
        busy: dict[str, int] = {}
        for site in sites:
            runner = scopes[site.scope].runners.get(site.name)
            process = hosts[site.host].processes.get(site.name)
            managed = runner is not None and runner.managed and runner.owner_lane == site.lane
            if (managed and runner is not None and runner.busy) or (
                process is not None and process.job_running
            ):
                pool = pool_and_slot(site.lane)[0]
                busy[pool] = busy.get(pool, 0) + 1
        return busy

    def _fingerprint(self, observation: Observation, site: Site, seen: ObservedRunnerLane) -> None:
        # Identity and ownership, not status: GitHub's busy and online flags move by the
        # second, and every executor reads them again right before it acts.
        runner = seen.runner or seen.stranger
        registration = (
            object_fingerprint(self.salt, {"id": runner.id, "managed": runner.managed})
            if runner
            else ABSENT
        )
        observation.fingerprint(
            site.lane, f"{GITHUB}:runner/{site.scope}/{site.name}", registration
        )
        process = (
            object_fingerprint(self.salt, {"ref": seen.process.host_ref})
            if seen.process
            else ABSENT
        )
        observation.fingerprint(site.lane, f"host:{site.host}/{site.name}", process)
