"""A deploy is planned only when something the running service uses changed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.kinds.product.ops import Op
from reconciler.runtime import Runtime
from tests.reconciler.conftest import store_fleet
from tests.support.fleets import converge, example_fleet


async def test_application_domain_change_needs_no_deploy(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime, ["product:docs-site/testing"])
    store_fleet(
        engine,
        example_fleet(
            tmp_path,
            edit=("docs-site.yaml", "docs.testing.example.com", "docs2.testing.example.com"),
        ),
    )
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert [a.op for a in plan.actions] == [Op.upsert_domain, Op.delete_domain]


async def test_compose_domain_change_is_deployed(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime, ["product:ledger/testing"])
    store_fleet(
        engine,
        example_fleet(
            tmp_path,
            edit=(
                "ledger.yaml",
                "          port: 8000\n      apply",
                "          port: 8001\n      apply",
            ),
        ),
    )
    plan = await compute_plan(runtime, ["product:ledger/testing"])
    assert [a.op for a in plan.actions] == [Op.upsert_domain, Op.deploy]
    assert "compose domains changed" in plan.actions[-1].reason


async def test_image_change_is_deployed(runtime: Runtime, engine: Engine, tmp_path: Path) -> None:
    await converge(runtime, ["product:docs-site/testing"])
    store_fleet(
        engine,
        example_fleet(
            tmp_path, edit=("docs-site.yaml", "ghcr.io/acme/docs:main", "ghcr.io/acme/docs:next")
        ),
    )
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert [a.op for a in plan.actions] == [Op.set_image, Op.deploy]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    assert (await compute_plan(runtime, ["product:docs-site/testing"])).actions == []


async def test_secret_rotation_is_deployed_and_shown_only_as_fingerprints(runtime: Runtime) -> None:
    await converge(runtime, ["product:ledger/testing"])
    assert runtime.environ is not None
    runtime.environ = {
        **runtime.environ,
        "SETPOINT_SECRET_LEDGER_DB_PASSWORD": "rotated-password-value-9876",
    }
    plan = await compute_plan(runtime, ["product:ledger/testing"])
    assert [a.op for a in plan.actions] == [Op.set_env, Op.deploy]
    (change,) = plan.actions[0].changes
    assert change.field == "env.LEDGER_DB_PASSWORD" and change.secret
    assert str(change.before).startswith("hmac-sha256:") and str(change.after).startswith(
        "hmac-sha256:"
    )
    assert change.before != change.after


async def test_secret_rotated_between_plan_and_apply_makes_the_plan_stale(
    runtime: Runtime, emulator: Emulator
) -> None:
    plan = await compute_plan(runtime, ["product:ledger/testing"])
    assert runtime.environ is not None
    runtime.environ = {
        **runtime.environ,
        "SETPOINT_SECRET_LEDGER_DB_PASSWORD": "changed-after-the-plan-1234",
    }
    before = emulator.summary()
    result = await apply_plan(runtime, plan.plan_id)
    assert result.refusal is not None and result.refusal.type == BlockerType.stale_plan
    assert "secret:product:ledger/testing/LEDGER_DB_PASSWORD" in result.refusal.message
    assert emulator.summary() == before
