"""What runner lanes never do: touch a runner they do not own, act without the pool's and
the host's opt-in, leave a half-made runner behind, or let the registration secret out."""

from __future__ import annotations

import logging

import anyio
import pytest
from sqlalchemy.engine import Engine

from providers.hosts.dokploy_container import ENV_JIT_CONFIG
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.records import audit
from reconciler.records.database import session_scope
from reconciler.records.status import all_statuses
from reconciler.records.work_queue import queued
from tests.loop.support import fast_engine
from tests.runners.conftest import GITHUB_TOKEN, Rig, every_row, outcomes
from tests.support.secret_scan import assert_no_secrets


async def test_an_unmanaged_runner_with_the_same_labels_is_never_touched(rig: Rig) -> None:
    labels = ["setpoint-managed", "setpoint-pool:ci", "self-hosted", "linux", "shop"]
    twin = rig.github.add_runner("acme/shop", "build-box", labels=labels)  # not recorded
    squatter = rig.github.add_runner("acme/shop", "setpoint-ci-2", labels=labels)
    rig.declare(count=(2, 2))
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied", "runner:ci/2": "blocked"}
    [plan] = [p for p in [await compute_plan(rig.runtime)] if p.blockers]
    [blocker] = plan.blockers
    assert blocker.type == "not_owned" and "setpoint-ci-2" in blocker.message
    assert rig.github.runners[twin.id].status == "online"
    assert rig.github.runners[squatter.id].status == "online"
    # Even when the pool has no use for them, they stay.
    rig.declare(count=(0, 2))
    await rig.reconcile()
    assert {twin.id, squatter.id} <= set(rig.github.runners)


@pytest.mark.parametrize(
    ("declared", "blocker", "says"),
    [
        ({"approved": False}, "host_not_approved", "spec.approved: true"),
        (
            {"repository": "acme/ledger", "allowed": "[acme/shop]"},
            "repository_not_allowed",
            "allowedRepositories",
        ),
        ({"allow": "[drain]"}, "action_not_allowed", "`create`"),
        ({"server": "build-9"}, "host_unsupported", "no server named 'build-9'"),
    ],
)
async def test_a_pool_without_opt_in_is_blocked_and_says_what_would_allow_it(
    rig: Rig, declared: dict[str, object], blocker: str, says: str
) -> None:
    rig.github.add_repo("acme", "ledger")
    rig.declare(count=(1, 1), **declared)  # type: ignore[arg-type]
    report = await rig.reconcile()
    assert set(outcomes(report).values()) == {"blocked"}
    plan = await compute_plan(rig.runtime)
    assert [(b.type, b.lane) for b in plan.blockers] == [(blocker, "runner:ci/1")]
    assert says in plan.blockers[0].message
    assert rig.applications() == {} and rig.runners("acme/shop") == {}
    assert rig.runners("acme/ledger") == {}


async def test_a_runner_that_never_comes_online_is_cleaned_up_and_reported(
    rig: Rig, engine: Engine
) -> None:
    rig.dokploy.state.runner_link = None  # the container starts, the runner never registers
    rig.declare(count=(1, 1))
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "apply_failed"}
    [detail] = [r.detail for r in report.lanes if r.lane == "runner:ci/1"]
    assert "not online" in detail and "cleaned up" in detail and "Recovery" in detail
    assert rig.runners() == {} and rig.applications() == {}
    with session_scope(engine) as session:
        records = audit.list_records(session, limit=100)
    assert any("Recovery" in str(r.data) for r in records if r.lane == "runner:ci/1")


async def test_a_runner_not_online_yet_parks_its_lane_instead_of_holding_the_pass(
    rig: Rig,
) -> None:
    """Invariant 17: the wait for a runner to come online is the lane's own pending state
    (a retry time), and the online timeout still cleans up what the start made."""
    rig.dokploy.state.runner_link = None  # the container starts, the runner never registers
    timeout = 20.0  # looked at again within a second (at most a twentieth of it apart)
    rig.runtime.settings = rig.runtime.settings.model_copy(
        update={"runner_online_timeout_seconds": timeout}
    )
    rig.declare(count=(1, 1))
    with anyio.fail_after(timeout / 2):  # the pass did not wait the online timeout out
        first = await rig.reconcile_once()
    assert outcomes(first) == {"runner:ci/1": "waiting"}
    [detail] = [r.detail for r in first.lanes if r.lane == "runner:ci/1"]
    assert "not online in acme/shop yet" in detail
    assert list(rig.applications()) == ["setpoint-ci-1"]  # made, and recorded as starting
    rig.clock.advance(timeout / 20)  # the lane's retry time: its next look
    looked = await rig.reconcile_once()
    assert outcomes(looked) == {"runner:ci/1": "waiting"}  # looked again, still not online
    [detail] = [r.detail for r in looked.lanes if r.lane == "runner:ci/1"]
    assert "await_online" in detail or "started" in detail, detail
    assert list(rig.applications()) == ["setpoint-ci-1"]
    rig.clock.advance(timeout)
    last = await rig.reconcile_once()
    assert outcomes(last) == {"runner:ci/1": "apply_failed"}
    [detail] = [r.detail for r in last.lanes if r.lane == "runner:ci/1"]
    assert "not online within 20 s" in detail and "cleaned up" in detail
    assert rig.runners() == {} and rig.applications() == {}


async def test_the_registration_secret_is_in_no_plan_audit_record_status_or_log(
    rig: Rig, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.declare(count=(1, 2))
    await rig.reconcile()
    first = rig.runners()["setpoint-ci-1"]
    rig.github.set_runner(first.id, busy=True)
    await rig.reconcile()  # a second runner: a second JIT config
    secrets = [*_jit_configs(rig), *rig.github.issued_runner_tokens]
    assert len(secrets) >= 4
    assert_no_secrets(every_row(engine), secrets)
    assert_no_secrets(caplog.text, secrets)
    plan = await compute_plan(rig.runtime)
    assert_no_secrets(plan.model_dump_json(), secrets)


def _jit_configs(rig: Rig) -> list[str]:
    found = []
    for live in rig.dokploy.state.live.values():
        for line in (live.env or "").splitlines():
            if line.startswith(f"{ENV_JIT_CONFIG}="):
                found.append(line.split("=", 1)[1])
    return found


async def test_a_full_host_takes_no_new_runner(rig: Rig) -> None:
    rig.declare(count=(2, 2), max_runners=1)
    report = await rig.reconcile()
    assert outcomes(report) == {"runner:ci/1": "applied", "runner:ci/2": "blocked"}
    plan = await compute_plan(rig.runtime)
    assert [(b.type, b.lane) for b in plan.blockers] == [("host_full", "runner:ci/2")]
    assert "maxRunners" in plan.blockers[0].message
    assert set(rig.runners()) == {"setpoint-ci-1"}


@pytest.mark.parametrize("outage", [True, False])
async def test_a_github_outage_or_an_empty_listing_removes_nothing(rig: Rig, outage: bool) -> None:
    rig.declare(count=(1, 2))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    rig.declare(count=(0, 2))  # nothing needed: a pass would drain an idle runner...
    listing = "/repos/acme/shop/actions/runners"
    if outage:
        rig.github.faults.add("error", method="GET", path=listing, status=502)
    else:
        rig.github.faults.add("empty_list", method="GET", path=listing)
    report = await rig.reconcile()
    assert outcomes(report)["runner:ci/1"] == "blocked"  # ...but it cannot see: it waits
    plan = await compute_plan(rig.runtime)
    assert {b.type for b in plan.blockers} == {"observation_incomplete"}
    assert rig.github.runners[before.id].status == "online"
    assert rig.applications() == {"setpoint-ci-1": "done"}


@pytest.mark.parametrize("visible", [True, False])
async def test_a_token_refused_the_runners_blocks_the_pool_access_denied_and_removes_nothing(
    rig: Rig, visible: bool
) -> None:
    rig.declare(count=(1, 2))
    await rig.reconcile()
    before = rig.runners()["setpoint-ci-1"]
    rig.declare(count=(0, 2))  # nothing needed: a pass would drain an idle runner...
    if visible:  # the token may read pull requests, but not the runners (administration)
        rig.github.grant(GITHUB_TOKEN, {"pull_requests": "write"}, ["acme/shop"])
    else:  # a private repository the token was not given: GitHub says Not Found
        rig.github.grant(GITHUB_TOKEN, {"administration": "write"}, ["acme/other"])
    listed_before = len([r for r in rig.github.requests if r[1].endswith("/actions/runners")])
    report = await rig.reconcile()
    assert outcomes(report)["runner:ci/1"] == "blocked"
    plan = await compute_plan(rig.runtime)
    assert {b.type for b in plan.blockers} == {"access_denied"}
    said = plan.blockers[0].message
    assert ("administration=read" if visible else "404 Not Found") in said
    assert rig.github.runners[before.id].status == "online"
    listings = [r for r in rig.github.requests if r[1].endswith("/actions/runners")]
    assert len(listings) - listed_before <= 2  # the refused pass and the plan: no retry storm


async def test_a_plan_made_before_its_host_lost_approval_is_refused(rig: Rig) -> None:
    rig.declare(count=(1, 1))
    plan = await compute_plan(rig.runtime)
    assert [a.op for a in plan.actions] == ["create"]
    rig.declare(count=(1, 1), approved=False)
    result = await apply_plan(rig.runtime, plan.plan_id)
    assert result.status == "refused" and result.refusal is not None
    assert result.refusal.type == "stale_plan"
    assert rig.runners() == {} and rig.applications() == {}


async def test_a_refused_github_token_is_a_gate_not_a_retry(rig: Rig) -> None:
    """Issue 23, item 2: a refused GitHub token is `credentials_refused`, as a refused
    Dokploy key is: the pool's lanes say why, the loop does not back off and try again,
    and the first pass after the token works again plans them."""
    rig.declare(count=(1, 2))
    refused = rig.github.faults.add("unauthorized")
    plan = await compute_plan(rig.runtime)
    assert {b.type for b in plan.blockers} == {"credentials_refused"}
    assert all("GitHub refused the token" in b.message for b in plan.blockers)
    assert GITHUB_TOKEN not in str(plan.model_dump())
    report = await fast_engine(rig.runtime).run_once()
    assert set(outcomes(report).values()) == {"blocked"}
    with session_scope(rig.engine) as session:
        assert [w.lane for w in queued(session)] == [], "not retried by backoff"
    stalled = {row.lane: row.conditions for row in all_statuses(rig.engine)}["runner:ci/1"]
    assert any(c["reason"] == "credentials_refused" for c in stalled)

    rig.github.faults.remove(refused.id)
    again = await compute_plan(rig.runtime)
    assert again.blockers == [] and again.actions
