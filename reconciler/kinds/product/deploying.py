"""Deploying a product lane's service and checking what it runs, apart from the executor's
creates, settings and deletes: a deploy waits for its build (the CLI's apply) or is looked at
and parked (the loop), then its health checks decide Done, or a Retry the lane waits out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from providers.dokploy.client import DokployClient
from providers.dokploy.deploy import deploy_and_look, deploy_and_wait
from providers.dokploy.errors import DeployQueued, DeployTimeout
from providers.dokploy.models import Deployment
from reconciler.core.outcomes import Done, Facts, ObjectRef, Retry
from reconciler.core.plans import Action
from reconciler.kinds.product import params
from reconciler.kinds.product.deploy_rules import CLOCK_SKEW_SECONDS
from reconciler.kinds.product.evidence import deploy_evidence, evidence_summary, health_evidence
from reconciler.kinds.product.health import HealthProbe
from reconciler.kinds.product.identity import verified_identity
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.kinds.product.rule_input import deploy_title
from reconciler.kinds.product.services import DeployTarget, strategy_for

_MAX_HEALTH_BACKOFF = 3600.0
# A parked deploy is looked at again at least this often (a twentieth of its timeout at most).
_LOOKS_PER_TIMEOUT = 20


class _DeployRequest(DeployTarget):
    """`deploy_and_wait`'s and `deploy_and_look`'s keywords but their time limits: built once
    a deploy, the same whichever of the two it goes through."""

    poll_interval: float
    title: str
    never_deployed: bool
    ask: bool
    deployment_id: str | None
    asked_after: float | None


@dataclass
class Deployer:
    """Deploys one service's configuration and checks its health, on the runtime's clock."""

    client: DokployClient
    health_check: HealthProbe
    clock: Callable[[], float] = field(kw_only=True)  # the runtime's clock: no default
    poll_interval: float = 1.0
    health_backoff: float = 30.0  # seconds before a failed health check is run again
    deploy_backoff: float = 60.0  # seconds before a failed deploy's configuration is retried
    # The loop comes back to a parked lane: a deploy is asked for and looked at for
    # `look_seconds`, then its lane is parked (a `Retry`) until the next look, never a
    # worker held for the build. Without a loop (the CLI's apply) it waits.
    parks_builds: bool = False
    look_seconds: float = 2.0

    async def deploy(
        self, action: Action, p: params.Deploy, ref: ObjectRef, turn: BuildTurn
    ) -> Done | Retry:
        """Deploy (or await a deploy of this configuration asked for earlier), holding one of
        the Dokploy server's build slots, so the timeout runs only while the build does."""
        waiting = p.awaiting
        async with turn:  # held already when the engine admitted the deploy
            asked_at = self.clock() if waiting is None or waiting.at is None else waiting.at
            request = self._deploy_request(action, p, ref)
            if self.parks_builds:
                seen = await self._look_at_deploy(request, p, ref, asked_at)
            else:
                seen = await self._wait_for_deploy(request, p, ref, asked_at)
        if isinstance(seen, Retry):
            return seen
        return await self._deploy_ended(p, ref, seen)

    def _deploy_request(self, action: Action, p: params.Deploy, ref: ObjectRef) -> _DeployRequest:
        """What the deploy asks Dokploy for, whether it waits for the build or looks at it:
        the service, how its deployment is told from others', and whether it is asked for
        now or awaited (asked for earlier)."""
        waiting = p.awaiting
        return {
            **strategy_for(ref.object_type).deploy_target(ref.object_id),
            "poll_interval": self.poll_interval,
            "title": deploy_title(action.lane, p.config_hash),
            # A service the plan did not see was created by this apply: it has no
            # deployments yet, so they need not be listed before deploying.
            "never_deployed": not p.service.id,
            "ask": waiting is None,
            "deployment_id": None if waiting is None else waiting.deployment_id,
            # Dokploy's clock and ours may differ: a deployment created a little before the
            # moment we asked is still taken for the one asked for (as `_answered` does).
            "asked_after": None
            if waiting is None or waiting.at is None
            else waiting.at - CLOCK_SKEW_SECONDS,
        }

    async def _wait_for_deploy(
        self, request: _DeployRequest, p: params.Deploy, ref: ObjectRef, asked_at: float
    ) -> Deployment | Retry:
        """Ask for the deploy (or not, when awaiting one asked for earlier) and wait for its
        build to end; a deploy still queued after its timeout is awaited by the next attempt."""
        timeout = p.timeout_seconds
        try:
            return await deploy_and_wait(
                self.client, **request, timeout=timeout, queue_timeout=timeout
            )
        except DeployQueued as exc:
            asked = {"config_hash": p.config_hash, "at": asked_at}
            return Retry(
                after=self.poll_interval,
                reason=f"queued: {exc}; awaited by the next attempt, not asked for again",
                facts=(Facts(ref, {"deploy_asked": asked}),),
            )

    async def _look_at_deploy(
        self, request: _DeployRequest, p: params.Deploy, ref: ObjectRef, asked_at: float
    ) -> Deployment | Retry:
        """Ask for the deploy (or not, when awaiting one asked for earlier) and look at its
        build for a moment once it started: the deployment once it ended, else the lane
        parked until the next look, with what the look found recorded, so that look awaits
        it and never asks again. A deploy asked for now holds its build slot until its build
        starts, as a waited-for one does, so no more of ours queue on one Dokploy server than
        without parking. The timeout counts on the runtime's clock from when the build was
        first seen, across the looks."""
        waiting = p.awaiting
        timeout = p.timeout_seconds
        try:
            deployment = await deploy_and_look(
                self.client,
                **request,
                look=self.look_seconds,
                # A look at a deploy asked for earlier waits for nothing: no slot is held.
                queue_timeout=timeout if waiting is None else self.look_seconds,
            )
        except DeployQueued as exc:
            waited = self.clock() - asked_at
            after = self._next_look(waited, timeout)
            asked = {"config_hash": p.config_hash, "at": asked_at}
            return Retry(
                after=after,
                reason=f"queued: {exc}; looked at again in {after:.0f} s, not asked for again",
                facts=(Facts(ref, {"deploy_asked": asked}),),
            )
        if deployment.is_terminal:
            return deployment
        now = self.clock()
        deployment_id = deployment.deployment_id
        known = waiting is not None and waiting.deployment_id == deployment_id
        since = waiting.building_since if known and waiting and waiting.building_since else now
        building = now - since
        if building >= timeout:
            raise DeployTimeout(
                f"deployment {deployment_id} of {ref.object_type} {ref.object_id} still "
                f"{deployment.status!r} {timeout:g}s after its build started"
            )
        after = min(self._next_look(building, timeout), timeout - building)
        asked = {
            "config_hash": p.config_hash,
            "at": asked_at,
            "deployment_id": deployment_id,
            "building_since": since,
        }
        return Retry(
            after=after,
            reason=(
                f"deployment {deployment_id} is building ({building:.0f} s of its "
                f"{timeout:g} s timeout): the lane is parked and looks at it again in "
                f"{after:.0f} s, not deploying again"
            ),
            facts=(Facts(ref, {"deploy_asked": asked}),),
        )

    def _next_look(self, waited: float, timeout: float) -> float:
        """Soon at first, then less often as the wait grows (each look is a small plan and
        apply), as a parked runner is looked at."""
        return max(self.poll_interval, min(waited, timeout / _LOOKS_PER_TIMEOUT))

    async def _deploy_ended(
        self, p: params.Deploy, ref: ObjectRef, deployment: Deployment
    ) -> Done | Retry:
        """A deployment of this configuration ended: DeployFailed, or its health checks."""
        if deployment.status != "done":
            evidence = await deploy_evidence(self.client, deployment)
            return self._deploy_failed(p, ref, deployment, evidence)
        outputs: dict[str, Any] = {
            "deployment_id": deployment.deployment_id,
            "status": deployment.status,
        }
        # The deployment runs this configuration whatever its health: recorded either way,
        # so a failing check is checked again later, never answered with the same deploy.
        ran = {
            "deployed_config_hash": p.config_hash,
            "deploy_failed": None,
            "deploy_asked": None,
        }
        if p.source_sha:  # the commit it runs, for status to show
            ran["deployed_sha"] = p.source_sha
        return await self.health(p, ref, ran, outputs)

    def _deploy_failed(
        self, p: params.Deploy, ref: ObjectRef, deployment: Deployment, evidence: dict[str, Any]
    ) -> Retry:
        """DeployFailed: the lane waits out a backoff before this configuration is deployed
        again (a new configuration deploys at once); the failure is the lane's state."""
        failures = p.deploy_failures + 1
        after = min(self.deploy_backoff * 2 ** (failures - 1), _MAX_HEALTH_BACKOFF)
        now = self.clock()
        deployment_id, status = deployment.deployment_id, deployment.status
        failed = {
            "config_hash": p.config_hash,
            "deployment_id": deployment_id,
            "status": status,
            "at": now,
            "failures": failures,
            "retry_at": now + after,
        }
        return Retry(
            after=after,
            reason=(
                f"DeployFailed: deployment {deployment_id} ended {status} ({failures} time(s))"
                f"{evidence_summary(evidence)}; this configuration is deployed again in "
                f"{after:g}s, a new one at once"
            ),
            evidence=evidence,
            facts=(Facts(ref, {"deploy_failed": failed, "deploy_asked": None}),),
            stalled=True,
            stalled_as=DEPLOY_FAILED.code,
        )

    async def health(
        self,
        p: params.Deploy | params.CheckHealth,
        ref: ObjectRef,
        facts: dict[str, Any],
        outputs: dict[str, Any],
    ) -> Done | Retry:
        """Run the action's health checks; Done when all pass, else Retry with backoff."""
        results = [
            verified_identity(
                await self.health_check(c.url, c.expect_status, c.timeout_seconds),
                c.expect_identity,
            )
            for c in p.health_checks
        ]
        outputs["health"] = [
            {"url": r.url, "ok": r.ok, "status": r.status, "reason": r.reason} for r in results
        ]
        failed = next((r for r in results if not r.ok), None)
        deployment_id = outputs.get("deployment_id")
        done = f"deployment {deployment_id} done" if deployment_id else "the deployment runs"
        health: dict[str, Any] = {"config_hash": p.config_hash, "ok": True}
        if failed is None:
            passed = (
                f", {len(results)} health check(s) passed"
                if results
                else ", not verified: no health check"
            )
            facts["health"] = health
            return Done(f"{done}{passed}", outputs, facts=(Facts(ref, facts),))
        failures = p.health_failures + 1
        health.update(ok=False, failures=failures, check=failed.url, reason=failed.reason)
        facts["health"] = health
        return Retry(
            after=min(self.health_backoff * 2 ** (failures - 1), _MAX_HEALTH_BACKOFF),
            reason=f"{done}, but health check {failed.url} failed: {failed.reason}",
            facts=(Facts(ref, facts),),
            evidence=health_evidence(deployment_id, failed),
            stalled=True,
        )


class BuildTurn:
    """One deploy's hold on a build slot: taken when first entered (the engine's admission),
    given back at the first exit (the executor's, when the build ends), so the health checks
    after a build do not keep the server's next deploy waiting."""

    def __init__(self, slots: anyio.Semaphore) -> None:
        self._slots = slots
        self._held = False
        self._ended = False

    async def __aenter__(self) -> BuildTurn:
        if not self._held and not self._ended:
            await self._slots.acquire()
            self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            self._held, self._ended = False, True
            self._slots.release()
