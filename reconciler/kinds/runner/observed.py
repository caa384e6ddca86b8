"""What the runner kind saw of one lane: its GitHub registration joined with its process.

A registration is *managed* only when it carries the `setpoint-managed` label and the
ownership registry records it; a runner with matching labels but no record (or a record but
no label) is a stranger: shown, never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.github.models import Runner
from providers.hosts.base import ProcessState, RunnerProcess
from reconciler.core.inventory import Owned
from reconciler.core.outcomes import ObjectRef
from reconciler.kinds.runner.lanes import DRAINING_LABEL, MANAGED_LABEL
from reconciler.kinds.runner.ops import GITHUB, PROCESS_PROVIDER

RUNNER_TYPE = "runner"
PROCESS_TYPE = "runner_process"
# A registration's facts as the last survey saw it on GitHub (the runners page shows them).
GITHUB_STATUS = "github_status"  # online, offline
GITHUB_BUSY = "github_busy"  # running a job


def runner_ref(runner_id: int) -> ObjectRef:
    return ObjectRef(GITHUB, RUNNER_TYPE, str(runner_id))


def process_ref(host: str, name: str) -> ObjectRef:
    return ObjectRef(PROCESS_PROVIDER, PROCESS_TYPE, f"{host}/{name}")


@dataclass(frozen=True)
class SeenRunner:
    id: int
    name: str
    scope: str
    status: str
    busy: bool
    labels: tuple[str, ...]
    owner_lane: str | None  # the lane the registry records it for; None: not recorded

    @classmethod
    def of(cls, runner: Runner, scope: str, owner_lane: str | None) -> SeenRunner:
        return cls(
            id=runner.id,
            name=runner.name,
            scope=scope,
            status=runner.status,
            busy=runner.busy,
            labels=tuple(runner.label_names),
            owner_lane=owner_lane,
        )

    @property
    def managed(self) -> bool:
        return self.owner_lane is not None and MANAGED_LABEL in self.labels

    @property
    def online(self) -> bool:
        return self.status == "online"

    @property
    def cordoned(self) -> bool:
        return DRAINING_LABEL in self.labels


@dataclass(frozen=True)
class ObservedRunnerLane:
    host: str
    scope: str
    runner: SeenRunner | None = None  # the lane's managed registration
    stranger: SeenRunner | None = None  # an unmanaged runner that has the lane's name
    process: RunnerProcess | None = None
    owned: tuple[Owned, ...] = ()
    gone: tuple[ObjectRef, ...] = ()  # owned registrations GitHub answered 404 for
    pool_busy: int = 0  # managed runners of the pool busy now
    host_runners: int = 0  # runner processes on the host, of every pool, this one's included
    host_problem: str | None = None  # the host cannot be used (no adapter, not listed)
    now: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state is ProcessState.running

    @property
    def busy(self) -> bool:
        """Busy by GitHub, or by the host when it can look inside (GitHub's flag lags)."""
        by_host = self.process is not None and self.process.job_running is True
        return by_host or (self.runner is not None and self.runner.busy)

    def facts(self, ref: ObjectRef) -> dict[str, object]:
        for owned in self.owned:
            if owned.ref == ref:
                return dict(owned.facts)
        return {}

    @property
    def process_ref(self) -> ObjectRef | None:
        return process_ref(self.host, self.process.name) if self.process else None

    def owns_process(self) -> bool:
        ref = self.process_ref
        return ref is not None and any(o.ref == ref for o in self.owned)
