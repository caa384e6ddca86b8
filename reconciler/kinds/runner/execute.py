"""Execute runner actions: the only place the runner kind changes GitHub or a host.

Order is the safety: a runner is deregistered on GitHub before its process stops (GitHub
refuses with 422 while a job runs: that is "not yet", a `Retry`, never forced), and only
after it was seen idle twice across `idle_window` seconds. A created or restarted runner
must show online within `online_timeout` of its start; until then the lane is parked (a
`Retry` per poll, with what was made recorded), and an `await_online` action looks again; if
it does not come online in time, what was made is cleaned up and the lane fails with a note
saying how to recover. No worker waits for a runner. The registration secret goes from GitHub's
answer straight to the host adapter as a `SecretValue`: never into params, outcomes or logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio

from providers.github.errors import GitHubConflict, GitHubError, GitHubNotFound, RunnerBusy
from providers.github.models import RunnerScope
from providers.github.runners import RunnersApi
from providers.hosts.base import HostAdapter, RunnerLaunch
from reconciler.core.outcomes import Claim, Done, Facts, Failed, ObjectRef, Outcome, Retry
from reconciler.core.plans import Action
from reconciler.errors import ActionFailed
from reconciler.kinds.runner import params
from reconciler.kinds.runner.lanes import DRAINING_LABEL, cordoned_labels, pool_and_slot
from reconciler.kinds.runner.observed import process_ref, runner_ref
from reconciler.kinds.runner.ops import RunnerOp
from reconciler.kinds.runner.register import (
    STARTED_DONE,
    Registrar,
    Registration,
    RunnerTimings,
    Starting,
)


@dataclass
class RunnerExecutor:
    github: RunnersApi
    adapters: Mapping[str, HostAdapter]
    clock: Callable[[], float]
    timings: RunnerTimings

    async def execute(self, action: Action) -> Outcome:
        handlers: dict[str, Callable[[Action], Awaitable[Outcome]]] = {
            RunnerOp.record: self._record,
            RunnerOp.create: self._create,
            RunnerOp.relabel: self._relabel,
            RunnerOp.restart: self._restart,
            RunnerOp.drain: self._drain,
            RunnerOp.remove: self._remove,
            RunnerOp.remove_orphan: self._remove,
            RunnerOp.await_online: self._await_online,
        }
        return await handlers[action.op](action)

    # -- the operations ---------------------------------------------------------------------

    async def _record(self, action: Action) -> Outcome:
        p, now = params.Record.of(action), self.clock()
        facts: list[Facts] = []
        claims: list[Claim] = []
        if p.offline and p.runner_id is not None:
            facts.append(Facts(runner_ref(p.runner_id), {"offline_seen_at": now}))
        if p.orphan:
            if p.runner_id is not None:
                facts.append(Facts(runner_ref(p.runner_id), {"orphan_seen_at": now}))
            else:  # a process never recorded: recorded now, so a later pass may remove it
                claims.append(self._process_claim(p, {"orphan_seen_at": now}))
        releases = tuple(runner_ref(int(i)) for i in p.forget)
        return Done(
            f"recorded {p.orphan or 'what this pass saw'} for {p.name}",
            claims=tuple(claims),
            facts=tuple(facts),
            releases=releases,
        )

    async def _create(self, action: Action) -> Outcome:
        p = params.Create.of(action)
        return await self._register_and_start(action, p, _stale(p))

    async def _relabel(self, action: Action) -> Outcome:
        p = params.Relabel.of(action)
        if p.runner_id is None:
            raise ActionFailed(f"{p.name} has no registration to relabel")
        await self.github.set_runner_labels(RunnerScope.parse(p.scope), p.runner_id, p.labels)
        return Done(f"{p.name} takes jobs again with its pool's labels")

    async def _restart(self, action: Action) -> Outcome:
        p = params.Restart.of(action)
        waiting = await self._deregister(action, p)
        if waiting is not None:
            return waiting
        await self._adapter(p).stop(p.name)
        return await self._register_and_start(action, p, _stale(p))

    async def _drain(self, action: Action) -> Outcome:
        p = params.Drain.of(action)
        waiting = await self._deregister(action, p)
        if waiting is not None:
            return waiting
        await self._adapter(p).stop(p.name)
        return Done(
            f"drained {p.name}: deregistered from {p.scope}, its process stopped",
            releases=_stale(p),
        )

    async def _remove(self, action: Action) -> Outcome:
        """remove, and remove_orphan (the same parameters)."""
        model = params.RemoveOrphan if action.op == RunnerOp.remove_orphan else params.Remove
        p = model.of(action)
        waiting = await self._deregister(action, p)
        if waiting is not None:
            return waiting
        await self._adapter(p).remove(p.name)
        return Done(
            f"removed {p.name}: deregistered from {p.scope}, its process deleted",
            releases=(*_stale(p), process_ref(p.host, p.name)),
        )

    # -- steps ------------------------------------------------------------------------------

    async def _deregister(self, action: Action, p: params.SlotParams) -> Outcome | None:
        """None once the runner is off GitHub (or was never on it); else why not yet."""
        runner_id = p.runner_id
        if runner_id is None:
            return None
        scope, ref = RunnerScope.parse(p.scope), runner_ref(runner_id)
        try:
            runner = await self.github.get_runner(scope, runner_id)
        except GitHubNotFound:
            return None
        if runner.online and DRAINING_LABEL not in runner.label_names:
            # Stop taking jobs: without the pool's labels no new job is routed to it.
            pool = pool_and_slot(action.lane)[0]
            await self.github.set_runner_labels(scope, runner_id, cordoned_labels(pool))
        if runner.busy or await self._job_running(p):
            return self._busy(ref, f"{p.name} is running a job: drained once it ends")
        if runner.online:
            waiting = self._idle_long_enough(p, ref)
            if waiting is not None:
                return waiting
        try:
            await self.github.delete_runner(scope, runner_id)
        except RunnerBusy:
            return self._busy(ref, f"GitHub refused to deregister {p.name}: still busy (422)")
        except GitHubNotFound:
            return None
        return None

    def _idle_long_enough(self, p: params.SlotParams, ref: ObjectRef) -> Retry | None:
        now, first = self.clock(), p.idle_seen_at
        window = self.timings.idle_window
        if first is None:
            return Retry(
                after=window,
                reason=f"{p.name} is idle; seen idle once, looked at again in {window:.0f} s",
                facts=(Facts(ref, {"idle_seen_at": now}),),
            )
        if now - first < window:
            return Retry(
                after=window - (now - first),
                reason=f"{p.name} idle since {now - first:.0f} s; waiting the window",
            )
        return None

    def _busy(self, ref: ObjectRef, reason: str) -> Retry:
        # Busy resets the idle watch: the next drain must see it idle twice again.
        return Retry(
            after=self.timings.busy_retry,
            reason=reason,
            facts=(Facts(ref, {"idle_seen_at": None}),),
        )

    async def _job_running(self, p: params.SlotParams) -> bool:
        """The host's word where it can look inside (GitHub's busy flag lags a new job)."""
        for process in await self._adapter(p).list_processes():
            if process.name == p.name:
                return process.job_running is True
        return False

    async def _register_and_start(
        self, action: Action, p: params.LaunchParams, releases: tuple[ObjectRef, ...]
    ) -> Outcome:
        scope = RunnerScope.parse(p.scope)
        registrar = Registrar(self.github, self.timings)
        try:
            registration = await registrar.register(scope, p.name, p.labels)
        except GitHubConflict:
            return Failed(
                f"GitHub already has a runner named {p.name} in {p.scope} that this "
                "plan did not see. Recovery: if it is a leftover of an interrupted create, "
                "delete it on GitHub (Settings > Actions > Runners), then plan again"
            )
        adapter = self._adapter(p)
        started = Starting(
            since=self.clock(),
            runner_id=registration.runner_id,
            jit=registration.jit,
            fresh_process=not p.owns_process,
        )
        try:
            await adapter.start(_launch(action, p, registration))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._clean_up(p, adapter, started.runner_id, started.fresh_process)
            raise
        return await self._see_online(p, started, releases)

    async def _await_online(self, action: Action) -> Outcome:
        p = params.AwaitOnline.of(action)
        return await self._see_online(p, p.starting.started(), ())

    async def _see_online(
        self, p: params.SlotParams, started: Starting, releases: tuple[ObjectRef, ...]
    ) -> Outcome:
        """One look at a started runner: online (done), never going to be (cleaned up,
        failed), or not yet: the lane is parked until the next look, never a held worker."""
        adapter = self._adapter(p)
        registrar = Registrar(self.github, self.timings)
        seen = await registrar.look_online(
            RunnerScope.parse(p.scope), p.name, started.runner_id, adapter
        )
        if seen.online and seen.runner_id is not None:
            return self._online(p, seen.runner_id, started, releases)
        timeout = self.timings.online_timeout
        waited = self.clock() - started.since
        why_not = seen.failed
        if why_not is None and waited < timeout:
            return self._not_yet(p, replace(started, runner_id=seen.runner_id), waited, releases)
        why_not = why_not or f"not online within {timeout:.0f} s"
        cleaned = await self._clean_up(p, adapter, seen.runner_id, started.fresh_process)
        return Failed(
            f"runner {p.name} is not online in {p.scope}: {why_not}; {cleaned}. "
            f"Recovery: check that host {p.host} can pull {p.image} and reach "
            "GitHub, then plan again"
        )

    def _online(
        self,
        p: params.SlotParams,
        runner_id: int,
        started: Starting,
        releases: tuple[ObjectRef, ...],
    ) -> Done:
        how = "a JIT config" if started.jit else "a registration token"
        return Done(
            f"runner {p.name} (id {runner_id}) is online in {p.scope} on {p.host}, "
            f"registered with {how}",
            outputs={"runner_id": runner_id},
            claims=(
                Claim(runner_ref(runner_id), p.name, facts=_site_facts(p)),
                self._process_claim(p, {"orphan_seen_at": None, "image": p.image, **STARTED_DONE}),
            ),
            releases=releases,
        )

    def _not_yet(
        self,
        p: params.SlotParams,
        started: Starting,
        waited: float,
        releases: tuple[ObjectRef, ...],
    ) -> Retry:
        """Parked: what was made is recorded (so a crash or a timeout can clean it up), and
        the lane looks again after a poll."""
        timeout = self.timings.online_timeout
        claims = [self._process_claim(p, {"orphan_seen_at": None, **started.facts()})]
        if started.runner_id is not None:
            claims.append(Claim(runner_ref(started.runner_id), p.name, facts=_site_facts(p)))
        # Soon at first, then less often as the wait grows, up to a twentieth of the timeout
        # (each look is a small plan and apply); never more often than the deploy poll.
        every = max(self.timings.poll, min(waited, timeout / 20))
        return Retry(
            after=min(every, max(0.0, timeout - waited)),
            reason=(
                f"runner {p.name} started {waited:.0f} s ago, not online in {p.scope} "
                f"yet: looked at again until {timeout:.0f} s have passed"
            ),
            claims=tuple(claims),
            releases=releases,
        )

    async def _clean_up(
        self, p: params.SlotParams, adapter: HostAdapter, runner_id: int | None, fresh: bool
    ) -> str:
        """Undo a start that did not come online; says what was done, or what is left."""
        left: list[str] = []
        try:
            if fresh:
                await adapter.remove(p.name)
            else:
                await adapter.stop(p.name)  # the slot's own process: kept, stopped
        except Exception as exc:
            left.append(f"process {p.name} on {p.host} ({type(exc).__name__})")
        try:
            if runner_id is not None:
                await self.github.delete_runner(RunnerScope.parse(p.scope), runner_id)
        except GitHubNotFound:
            pass
        except GitHubError as exc:
            left.append(f"registration {runner_id} in {p.scope} ({exc.__class__.__name__})")
        if left:
            return "could not clean up " + " and ".join(left) + ": remove them by hand"
        return "its registration and process were cleaned up"

    def _process_claim(self, p: params.SlotParams, extra: Mapping[str, Any]) -> Claim:
        return Claim(process_ref(p.host, p.name), p.name, facts={**_site_facts(p), **extra})

    def _adapter(self, p: params.SlotParams) -> HostAdapter:
        adapter = self.adapters.get(p.host)
        if adapter is None:
            raise ActionFailed(f"no host adapter for host {p.host}")
        return adapter


def _launch(action: Action, p: params.LaunchParams, registration: Registration) -> RunnerLaunch:
    return RunnerLaunch(
        name=p.name,
        lane=action.lane,
        pool=p.pool,
        image=p.image,
        labels=tuple(p.labels),
        github_url=p.github_url,
        registration=registration.secret,
        jit=registration.jit,
        ephemeral=p.ephemeral,
    )


def _site_facts(p: params.SlotParams) -> dict[str, Any]:
    """Where the runner lives: lets a later pass find it after its pool is gone."""
    return {"scope": p.scope, "host": p.host, "pool": p.pool, "name": p.name}


def _stale(p: params.SlotParams) -> tuple[ObjectRef, ...]:
    """Registrations the action ends: the lane's current one and any GitHub no longer has."""
    ids = [*(int(i) for i in p.forget), *([p.runner_id] if p.runner_id is not None else [])]
    return tuple(runner_ref(i) for i in dict.fromkeys(ids))
