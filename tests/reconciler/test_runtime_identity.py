"""Runtime identity (issue 27): with `runtimeIdentity: true` Setpoint puts the lane's deploy
generation and image digest into the service's env, and a health check with
`expectIdentity: true` passes only when the service reports them back. The checks go to the
Dokploy emulator's routed domains, which echo the env like an nginx `add_header` would."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from desired_state.document import Document
from desired_state.issues import InvalidDesiredState
from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.kinds.product.identity import DIGEST_KEY, GENERATION_KEY, with_identity
from reconciler.kinds.product.lanes import ProductLane, lanes_of_product
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.rule_input import SecretFacts, desired_config_hash
from reconciler.loop.passes import reconcile_pass
from reconciler.records.status import all_statuses
from reconciler.runtime import Runtime, ShiftedClock
from tests.reconciler.conftest import store_fleet
from tests.support.health_probes import probe_answered_by
from tests.support.notes_fleet import notes_fleet
from tests.support.product_documents import product_spec

LANE = "product:notes/testing"
SERVICE = "notes-testing"
HOST = "testing.notes.example.com"
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "c" * 64
INTERVAL = 300.0  # SETPOINT_HEALTH_WATCH_INTERVAL_SECONDS' default


def write_fleet(
    runtime: Runtime,
    tmp_path: Path,
    *,
    digest: str = DIGEST,
    identity: bool = True,
    expect: bool = True,
    apply: str = "manual",
) -> None:
    path = tmp_path / "notes.yaml"
    text = notes_fleet(
        image=f"ghcr.io/acme/notes@{digest}",
        env={"LOG_LEVEL": "info"},
        environment=False,
        health_check=f"{{expectIdentity: {str(expect).lower()}}}",
        apply=apply,
        runtime_identity=identity,
    )
    path.write_text(text)
    store_fleet(runtime.database, path, prune=True)


@pytest.fixture
def checked(runtime: Runtime, dokploy_app: Starlette) -> Runtime:
    """Health checks answered by the emulator's routed domains (what a service runs)."""

    probe = probe_answered_by(dokploy_app)

    providers = {**runtime.providers, HEALTH: HealthChecks(probe)}
    return dataclasses.replace(runtime, providers=providers, clock=ShiftedClock())


def container_env(emulator: Emulator) -> dict[str, str]:
    return emulator.state.env_behind(HOST)


def ready(runtime: Runtime) -> dict[str, str]:
    row = next(r for r in all_statuses(runtime.database) if r.lane == LANE)
    return next(c for c in row.conditions if c["type"] == "Ready")


async def converge(runtime: Runtime) -> None:
    plan = await compute_plan(runtime, [LANE])
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, [r.message for r in result.actions]
    assert not (await compute_plan(runtime, [LANE])).actions


async def test_a_lane_that_reports_its_identity_back_is_ready(
    checked: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(checked, tmp_path)
    await converge(checked)
    env = container_env(emulator)
    assert env["SETPOINT_IMAGE_DIGEST"] == DIGEST
    assert len(env["SETPOINT_GENERATION"]) == 16 and env["LOG_LEVEL"] == "info"
    assert ready(checked)["status"] == "True"


async def test_a_lane_running_something_else_turns_degraded_with_the_reason(
    checked: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(checked, tmp_path)
    await converge(checked)
    assert (await reconcile_pass(checked)).lanes[0].outcome == "converged"
    planned = container_env(emulator)["SETPOINT_GENERATION"]

    # Someone redeployed the service by hand from another build: it still answers 200.
    [live] = [v for v in emulator.state.live.values() if v.container_env]
    assert live.container_env is not None
    live.container_env["SETPOINT_IMAGE_DIGEST"] = OTHER_DIGEST
    assert isinstance(checked.clock, ShiftedClock)
    checked.clock.offset += INTERVAL
    result = next(r for r in (await reconcile_pass(checked)).lanes if r.lane == LANE)
    assert result.outcome == "degraded", result
    condition = ready(checked)
    assert condition["status"] == "False" and condition["reason"] == "Degraded"
    assert (
        f"runs something else than planned: SETPOINT_IMAGE_DIGEST {OTHER_DIGEST}, planned "
        f"{DIGEST}" in condition["message"]
    ), condition
    assert container_env(emulator)["SETPOINT_GENERATION"] == planned  # not the one at fault


async def test_a_deploy_whose_answer_does_not_report_its_identity_is_not_verified(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The conftest's workload answers 200 "ok" to every check, reporting nothing."""
    write_fleet(runtime, tmp_path)
    plan = await compute_plan(runtime, [LANE])
    [deploy] = [a for a in plan.actions if a.op == Op.deploy]
    expected = deploy.params["health_checks"][0]["expect_identity"]
    assert expected["SETPOINT_IMAGE_DIGEST"] == DIGEST
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "waiting"  # checked again with backoff, never redeployed
    [failed] = [r for r in result.actions if r.action_id == deploy.id]
    assert "runs something else than planned" in failed.message
    assert "SETPOINT_GENERATION not reported" in failed.message


async def test_a_policy_only_change_keeps_the_generation_and_deploys_nothing(
    checked: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(checked, tmp_path)
    await converge(checked)
    generation = container_env(emulator)["SETPOINT_GENERATION"]
    write_fleet(checked, tmp_path, apply="auto-safe")
    assert not (await compute_plan(checked, [LANE])).actions  # a new desired generation
    write_fleet(checked, tmp_path, digest=OTHER_DIGEST)
    await converge(checked)
    env = container_env(emulator)
    assert env["SETPOINT_IMAGE_DIGEST"] == OTHER_DIGEST
    assert env["SETPOINT_GENERATION"] != generation
    assert ready(checked)["status"] == "True"


async def test_without_runtime_identity_nothing_is_injected(
    checked: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    write_fleet(checked, tmp_path, identity=False, expect=False)
    await converge(checked)
    assert container_env(emulator) == {"LOG_LEVEL": "info"}
    assert ready(checked)["status"] == "True"


async def test_expect_identity_needs_runtime_identity(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidDesiredState, match="needs the lane's `runtimeIdentity: true`"):
        write_fleet(runtime, tmp_path, identity=False, expect=True)


def identity_lane(**fields: Any) -> ProductLane:
    """The `testing` lane of a product whose lane opts in to runtime identity."""
    lane = {
        "name": "testing",
        "image": f"ghcr.io/acme/shop@{DIGEST}",
        "domains": [{"host": "testing.shop.example.com"}],
        "healthChecks": [{"expectIdentity": True}],
        "runtimeIdentity": True,
        **fields,
    }
    document = Document.model_validate(
        {
            "apiVersion": "setpoint.dev/v1",
            "kind": "Product",
            "metadata": {"name": "shop"},
            "spec": product_spec(lanes=[lane]),
        }
    )
    [resolved] = lanes_of_product(document, generation=1)
    return resolved


def deployed_as(lane: ProductLane) -> str:
    """The configuration hash a deploy records: equal hashes, no deploy."""
    return desired_config_hash(lane, SecretFacts(salt="salt", desired={}))


POLICY_EDITS = st.fixed_dictionaries(
    {},
    optional={
        "apply": st.sampled_from(["manual", "auto-safe"]),
        "protect": st.booleans(),
        "requireReason": st.booleans(),
        "onFailedHealth": st.sampled_from(["none", "rollback"]),
        "healthIntervalSeconds": st.integers(min_value=10, max_value=86400),
        "healthChecks": st.lists(
            st.builds(
                lambda timeout, status: {
                    "expectIdentity": True,
                    "timeoutSeconds": timeout,
                    "expectStatus": status,
                },
                st.integers(min_value=1, max_value=120),
                st.sampled_from([200, 204]),
            ),
            min_size=1,
            max_size=2,
        ),
    },
)
ENV_VALUES = st.text(alphabet="abcxyz019-_", min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(policy=POLICY_EDITS, before=ENV_VALUES, after=ENV_VALUES, digit=st.sampled_from("ab"))
def test_the_generation_moves_with_what_is_deployed_and_never_with_policy(
    policy: dict[str, Any], before: str, after: str, digit: str
) -> None:
    base = identity_lane(env={"FLAG": before})
    edited = identity_lane(env={"FLAG": before}, **policy)
    assert edited.identity == base.identity
    assert deployed_as(edited) == deployed_as(base)  # a policy edit redeploys nothing
    image = f"ghcr.io/acme/shop@sha256:{digit * 64}"
    redeployed = identity_lane(env={"FLAG": after}, image=image, **policy)
    changed = (after, image) != (before, f"ghcr.io/acme/shop@{DIGEST}")
    assert (redeployed.identity[GENERATION_KEY] != base.identity[GENERATION_KEY]) == changed
    assert redeployed.identity[DIGEST_KEY] == f"sha256:{digit * 64}"
    assert redeployed.env[GENERATION_KEY] == redeployed.identity[GENERATION_KEY]


def test_a_lane_made_from_another_reports_its_own_identity() -> None:
    """A preview is its template lane with another image: the template's identity goes."""
    template = identity_lane()
    preview = with_identity(dataclasses.replace(template, image="ghcr.io/acme/shop:pr-7"))
    assert DIGEST_KEY not in preview.env and DIGEST_KEY not in preview.identity
    assert preview.identity[GENERATION_KEY] != template.identity[GENERATION_KEY]
