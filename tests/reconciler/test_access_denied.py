"""Real Dokploy refuses a working key per service (401 with a tRPC body): the lane is blocked or
fails `access_denied` with Dokploy's words, and no other lane, nor the key, is taken for bad.
A domain host duplicated by hand, which Dokploy accepts, blocks its lane instead of vanishing."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.dokploy.emulator.faults import (
    PERMISSION_DENIED,
    REMOTE_SERVER_REQUIRED,
    SERVICE_ACCESS_DENIED,
)
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.kinds.product.reasons import ROUTE_CONFLICT
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy, owned_service_of
from tests.support.fleets import converge

DOCS = "product:docs-site/testing"


async def test_a_service_refused_to_the_key_blocks_only_its_lane_access_denied(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, DOCS)
    assert owned is not None
    emulator.faults.access_denied(owned.ref.object_id, message=SERVICE_ACCESS_DENIED)
    plan = await compute_plan(runtime)
    assert [(b.type, b.lane) for b in plan.blockers] == [(BlockerType.access_denied, DOCS)]
    assert SERVICE_ACCESS_DENIED in plan.blockers[0].message
    # The key is fine: no credentials gate, and every other lane is planned (converged).
    assert not any(b.type == BlockerType.credentials_refused for b in plan.blockers)
    await dokploy(runtime).preflight()


async def test_a_call_refused_to_the_key_fails_its_action_access_denied(
    runtime: Runtime, emulator: Emulator
) -> None:
    emulator.faults.access_denied(procedure="application.create", message=REMOTE_SERVER_REQUIRED)
    plan = await compute_plan(runtime, [DOCS])
    result = await apply_plan(runtime, plan.plan_id)
    assert result.status == "failed"
    failed = [r for r in result.actions if r.result == "failed"]
    assert [r.op for r in failed] == ["create_application"]
    assert failed[0].message.startswith("access_denied:")
    assert REMOTE_SERVER_REQUIRED in failed[0].message


async def test_a_refused_deploy_names_the_permission_dokploy_gave(
    runtime: Runtime, emulator: Emulator, engine: Engine
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, DOCS)
    assert owned is not None
    # Someone changed the image by hand: the plan puts it back and deploys.
    await dokploy(runtime).application_save_docker_provider(owned.ref.object_id, "nginx:old")
    emulator.faults.access_denied(procedure="application.deploy", message=PERMISSION_DENIED)
    plan = await compute_plan(runtime, [DOCS])
    assert plan.actions and not plan.blockers
    result = await apply_plan(runtime, plan.plan_id)
    failed = [r for r in result.actions if r.result == "failed"]
    assert [r.op for r in failed] == ["deploy"]
    assert failed[0].message.startswith("access_denied:")
    assert PERMISSION_DENIED in failed[0].message


async def test_a_domain_duplicated_by_hand_blocks_its_lane(
    runtime: Runtime, engine: Engine
) -> None:
    await converge(runtime)
    owned = owned_service_of(engine, DOCS)
    assert owned is not None
    client = dokploy(runtime)
    # What the recording's probe did on a real server: the same host again, accepted.
    await client.domain_create("docs.testing.example.com", application_id=owned.ref.object_id)
    plan = await compute_plan(runtime, [DOCS])
    assert [(b.type, b.lane) for b in plan.blockers] == [(ROUTE_CONFLICT.code, DOCS)]
    assert "docs.testing.example.com/ by 2 domains" in plan.blockers[0].message
