"""Faults the emulator injects on request, so tests can prove how Setpoint copes.

Every control is a method here and is reachable over HTTP as
`POST /__emulator/faults {"action": <method name>, ...keyword arguments}`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

HangWhen = Literal["before", "after"]
ANY = "*"
# What Dokploy v0.30 answers (401, a tRPC body with code UNAUTHORIZED) when a key's member
# may not touch a service, or when the server wants a remote server named for a create.
SERVICE_ACCESS_DENIED = "You don't have access to this service"
PERMISSION_DENIED = "Permission denied"
REMOTE_SERVER_REQUIRED = "You need to use a server to create an application"


@dataclass(frozen=True)
class Denial:
    """Refuse calls of `procedure` (or any) that name `service_id` (or any) with `message`."""

    service_id: str
    procedure: str
    message: str

    def refuses(self, procedure: str, service_ids: set[str]) -> bool:
        named = self.service_id == ANY or self.service_id in service_ids
        return named and self.procedure in (ANY, procedure)


@dataclass
class ProcedureFaults:
    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    fail_next: int = 0
    fail_status: int = 500
    hang_seconds: float = 0.0
    hang_when: HangWhen = "after"
    hang_count: int = 0
    empty_list: bool = False
    empty_body: bool = False
    truncated_body: bool = False


@dataclass
class Decision:
    """What to do with one request, decided before it is handled."""

    latency: float = 0.0
    fail_status: int | None = None
    hang_seconds: float = 0.0
    hang_when: HangWhen = "after"
    empty_list: bool = False
    empty_body: bool = False
    truncated_body: bool = False


@dataclass
class FaultController:
    seed: int = 0
    procedures: dict[str, ProcedureFaults] = field(default_factory=dict)
    force_unauthorized: bool = False
    rate_limited_requests: int = 0
    retry_after_seconds: float = 1.0
    stuck_services: set[str] = field(default_factory=set)
    failing_deploys: dict[str, int] = field(default_factory=dict)
    denials: list[Denial] = field(default_factory=list)
    unhealthy_hosts: dict[str, int] = field(default_factory=dict)  # host (or ANY) -> status

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 -- fault dice, not security

    def _for(self, procedure: str) -> ProcedureFaults:
        return self.procedures.setdefault(procedure, ProcedureFaults())

    # -- controls -------------------------------------------------------------------------

    def reset(self) -> None:
        self.procedures.clear()
        self.force_unauthorized = False
        self.rate_limited_requests = 0
        self.stuck_services.clear()
        self.failing_deploys.clear()
        self.denials.clear()
        self.unhealthy_hosts.clear()
        self._rng = random.Random(self.seed)  # noqa: S311

    def latency(self, seconds: float, procedure: str = ANY) -> None:
        """Delay every answer (or one procedure's) by `seconds`."""
        self._for(procedure).latency = seconds

    def error_rate(self, procedure: str, rate: float, status: int = 500) -> None:
        """Fail a share of calls (0..1), drawn from the seeded generator."""
        faults = self._for(procedure)
        faults.error_rate, faults.error_status = rate, status

    def fail_next(self, procedure: str, status: int = 500, count: int = 1) -> None:
        """Fail the next `count` calls of a procedure with `status`, without acting on them.
        A 429 carries `Retry-After` (see `rate_limit`), as a rate limiter's answer does."""
        faults = self._for(procedure)
        faults.fail_next, faults.fail_status = count, status

    def timeout(
        self,
        procedure: str,
        seconds: float = 30.0,
        *,
        when: HangWhen = "after",
        count: int = 1,
    ) -> None:
        """Hang the next `count` calls. `after`: do the work, then hang (a lost answer);
        `before`: hang and then answer 504 without doing anything."""
        faults = self._for(procedure)
        faults.hang_seconds, faults.hang_when, faults.hang_count = seconds, when, count

    def unauthorized(self, on: bool = True) -> None:
        """Answer 401 to every API call, as Dokploy does for a revoked key."""
        self.force_unauthorized = on

    def rate_limit(self, count: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next `count` API calls with 429 and a Retry-After header."""
        self.rate_limited_requests, self.retry_after_seconds = count, retry_after

    def empty_list(self, procedure: str, on: bool = True) -> None:
        """Answer a list procedure with [] whatever exists."""
        self._for(procedure).empty_list = on

    def empty_body(self, procedure: str, on: bool = True) -> None:
        """Do the work, then answer 200 with an empty body (as Dokploy answers
        `application.deploy`), whatever the procedure would have answered."""
        self._for(procedure).empty_body = on

    def truncated_body(self, procedure: str, on: bool = True) -> None:
        """Do the work, then answer 200 with the first half of the JSON it would have sent
        (a proxy or a connection that cut the answer short)."""
        self._for(procedure).truncated_body = on

    def stuck_deployment(self, service_id: str = ANY, on: bool = True) -> None:
        """Builds of this service (or all) stay `running` forever."""
        if on:
            self.stuck_services.add(service_id)
        else:
            self.stuck_services.discard(service_id)

    def fail_next_deploy(self, service_id: str = ANY, count: int = 1) -> None:
        """The next `count` builds of this service (or any) end in `error`."""
        self.failing_deploys[service_id] = count

    def unhealthy(self, host: str = ANY, status: int = 503, on: bool = True) -> None:
        """The deployed service behind `host` (or every one) answers `status` to every
        request, as a service that started but fails its health check would."""
        if on:
            self.unhealthy_hosts[host.lower()] = status
        else:
            self.unhealthy_hosts.pop(host.lower(), None)

    def unhealthy_status(self, host: str) -> int | None:
        return self.unhealthy_hosts.get(host, self.unhealthy_hosts.get(ANY))

    def access_denied(
        self, service_id: str = ANY, procedure: str = ANY, message: str = SERVICE_ACCESS_DENIED
    ) -> None:
        """The key's member may not touch this service (or, with a procedure and no service,
        make that call): such calls answer 401 with Dokploy's tRPC body and `message`, while
        the key itself still works (the preflight's `user.get` passes)."""
        self.denials.append(Denial(service_id, procedure, message))

    # -- decisions ------------------------------------------------------------------------

    def denial(self, procedure: str, service_ids: set[str]) -> str | None:
        """The message a permission check answers this call with, if one refuses it."""
        for denial in self.denials:
            if denial.refuses(procedure, service_ids):
                return denial.message
        return None

    def take_rate_limit(self) -> bool:
        if self.rate_limited_requests > 0:
            self.rate_limited_requests -= 1
            return True
        return False

    def decide(self, procedure: str) -> Decision:
        decision = Decision()
        for key in (ANY, procedure):
            faults = self.procedures.get(key)
            if faults is None:
                continue
            decision.latency += faults.latency
            decision.empty_list = decision.empty_list or faults.empty_list
            decision.empty_body = decision.empty_body or faults.empty_body
            decision.truncated_body = decision.truncated_body or faults.truncated_body
            if faults.fail_next > 0:
                faults.fail_next -= 1
                decision.fail_status = faults.fail_status
            elif faults.error_rate and self._rng.random() < faults.error_rate:
                decision.fail_status = faults.error_status
            if faults.hang_count > 0:
                faults.hang_count -= 1
                decision.hang_seconds, decision.hang_when = faults.hang_seconds, faults.hang_when
        return decision

    def build_is_stuck(self, service_id: str) -> bool:
        return bool({ANY, service_id} & self.stuck_services)

    def take_failing_deploy(self, service_id: str) -> bool:
        for key in (service_id, ANY):
            if self.failing_deploys.get(key, 0) > 0:
                self.failing_deploys[key] -= 1
                return True
        return False

    def snapshot(self) -> dict[str, Any]:
        return {
            "procedures": {k: asdict(v) for k, v in self.procedures.items()},
            "forceUnauthorized": self.force_unauthorized,
            "rateLimitedRequests": self.rate_limited_requests,
            "stuckServices": sorted(self.stuck_services),
            "failingDeploys": dict(self.failing_deploys),
            "denials": [asdict(d) for d in self.denials],
            "unhealthyHosts": dict(self.unhealthy_hosts),
        }

    ACTIONS = frozenset(
        {
            "reset",
            "latency",
            "error_rate",
            "fail_next",
            "timeout",
            "unauthorized",
            "rate_limit",
            "empty_list",
            "empty_body",
            "truncated_body",
            "stuck_deployment",
            "fail_next_deploy",
            "access_denied",
            "unhealthy",
        }
    )

    def apply(self, spec: dict[str, Any]) -> None:
        """Run one control from its JSON form; raises ValueError for a bad spec."""
        spec = dict(spec)
        action = spec.pop("action", None)
        if action not in self.ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {sorted(self.ACTIONS)}")
        try:
            getattr(self, action)(**spec)
        except TypeError as exc:
            raise ValueError(f"bad arguments for {action}: {exc}") from None
