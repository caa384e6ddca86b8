"""The runner diff, pure: whatever it observes, it never proposes stopping a busy runner,
never acts on a stranger, and acts only as far as the pool opts in."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import assume, given
from hypothesis import strategies as st

from desired_state.host import HostSpec
from desired_state.runner_pool import RunnerPoolSpec
from providers.hosts.base import ProcessState, RunnerProcess
from reconciler.core.inventory import Owned
from reconciler.kinds.runner.diff import RunnerRules, diff_runner_lane, target_count
from reconciler.kinds.runner.lanes import PoolView, RunnerLane
from reconciler.kinds.runner.observed import ObservedRunnerLane, SeenRunner
from reconciler.kinds.runner.params import SlotParams

RULES = RunnerRules(offline_grace=60, orphan_grace=60)
STOPPING = {"drain", "remove", "remove_orphan", "restart"}


def _pool(allow: list[str], low: int = 1, high: int = 3, approved: bool = True) -> PoolView:
    spec = RunnerPoolSpec.model_validate(
        {
            "scope": "repository",
            "repository": "acme/shop",
            "host": "build-1",
            "count": {"min": low, "max": high},
            "image": "ghcr.io/actions/actions-runner:2.321.0",
            "allow": allow,
        }
    )
    host = HostSpec.model_validate(
        {"type": "dokploy-server", "dokployServer": "build-1", "approved": approved}
    )
    return PoolView(name="ci", spec=spec, generation=1, host=host)


def _runner(busy: bool, online: bool, owner: str | None = "runner:ci/2") -> SeenRunner:
    labels = ("setpoint-managed", "setpoint-pool:ci")
    return SeenRunner(
        7, "setpoint-ci-2", "acme/shop", "online" if online else "offline", busy, labels, owner
    )


def _owned(kind_facts: Mapping[str, object]) -> tuple[Owned, ...]:
    return (
        Owned(
            "github",
            "runner",
            "7",
            "setpoint-ci-2",
            "runner",
            "runner:ci/2",
            False,
            False,
            kind_facts,
        ),
        Owned(
            "host",
            "runner_process",
            "build-1/setpoint-ci-2",
            "setpoint-ci-2",
            "runner",
            "runner:ci/2",
            False,
            False,
            {},
        ),
    )


@given(
    online=st.booleans(),
    process=st.sampled_from([None, *ProcessState]),
    github_busy=st.booleans(),
    job_running=st.sampled_from([None, True, False]),
    pool_busy=st.integers(0, 5),
    allow=st.lists(st.sampled_from(["create", "drain", "restart", "remove"]), unique=True),
    marked=st.booleans(),
    now=st.floats(0, 1e6),
)
def test_a_busy_runner_is_never_proposed_for_stopping(
    online: bool,
    process: ProcessState | None,
    github_busy: bool,
    job_running: bool | None,
    pool_busy: int,
    allow: list[str],
    marked: bool,
    now: float,
) -> None:
    facts = {"orphan_seen_at": 0.0, "offline_seen_at": 0.0} if marked else {}
    seen = ObservedRunnerLane(
        host="build-1",
        scope="acme/shop",
        runner=_runner(busy=github_busy, online=online),
        process=RunnerProcess("setpoint-ci-2", process, "app-2", job_running=job_running)
        if process
        else None,
        owned=_owned(facts),
        pool_busy=pool_busy,
        now=now,
    )
    assume(seen.busy)  # by GitHub's flag, or by the host looking inside
    lane = RunnerLane("runner:ci/2", _pool(allow), 2)
    diff = diff_runner_lane("runner:ci/2", lane, seen, RULES)
    assert not {a.op for a in diff.actions} & STOPPING


@given(online=st.booleans(), busy=st.booleans(), pool_busy=st.integers(0, 5))
def test_a_stranger_is_never_acted_on(online: bool, busy: bool, pool_busy: int) -> None:
    stranger = _runner(busy=busy, online=online, owner=None)
    seen = ObservedRunnerLane(
        host="build-1", scope="acme/shop", stranger=stranger, pool_busy=pool_busy
    )
    pool = _pool(["create", "drain", "restart", "remove"])
    diff = diff_runner_lane("runner:ci/2", RunnerLane("runner:ci/2", pool, 2), seen, RULES)
    assert all(isinstance(a.params, SlotParams) for a in diff.actions)
    assert all(a.params.runner_id is None for a in diff.actions if isinstance(a.params, SlotParams))
    assert all(b.type == "not_owned" for b in diff.blockers)
    assert bool(diff.actions) == bool(diff.blockers)  # a create, blocked: the name is taken


def test_the_pool_keeps_one_idle_spare_within_its_counts() -> None:
    assert [target_count(_pool([], 1, 3), busy) for busy in range(5)] == [1, 2, 3, 3, 3]
    assert [target_count(_pool([], 0, 3), busy) for busy in range(5)] == [0, 1, 2, 3, 3]
    assert target_count(_pool([], 2, 3), 0) == 2
