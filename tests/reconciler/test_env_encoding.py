"""Env that means what the operator wrote (invariant 16), and env writes that leave alone
what Setpoint does not own (build settings of an adopted service)."""

from __future__ import annotations

from pathlib import Path

from providers.dokploy.emulator import Emulator
from providers.dokploy.envfile import parse
from reconciler.core.adoption import adopt
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.kinds.product.ops import Op
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy, owned_service_of, store_fleet

NOTES = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: notes
spec:
  repository: acme/notes
  dokploy: {project: notes}
  runtime: {port: 8080}
  lanes:
    - name: testing
      image: ghcr.io/acme/notes:main
      env:
        GREETING: 'say "hi"'
        WINDOWS_PATH: 'C:\\path\\to\\x and \\n literal'
        TABBED: "a\\tb"
        BACKTICKED: "`whoami`"
        MULTILINE: "line1\\nline2"
        HASHED: "value # not a comment"
"""
WANTED = {
    "GREETING": 'say "hi"',
    "WINDOWS_PATH": "C:\\path\\to\\x and \\n literal",
    "TABBED": "a\tb",
    "BACKTICKED": "`whoami`",
    "MULTILINE": "line1\nline2",
    "HASHED": "value # not a comment",
}
LANE = "product:notes/testing"


async def test_tricky_values_reach_the_deployed_service_and_drift_shows(
    runtime: Runtime, emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "notes.yaml").write_text(NOTES)
    store_fleet(runtime.database, tmp_path)
    plan = await compute_plan(runtime, [LANE])
    assert (await apply_plan(runtime, plan.plan_id)).ok
    owned = owned_service_of(runtime.database, LANE)
    assert owned is not None
    live = emulator.state.live[owned.object_id].container_env or {}
    assert {key: live.get(key) for key in WANTED} == WANTED
    assert (await compute_plan(runtime, [LANE])).actions == []

    # Text that Setpoint used to write: it reads back the same to a naive reader, but the
    # service gets `say \"hi\"`. The plan now sees that and writes it again.
    app = await dokploy(runtime).application_one(owned.object_id)
    assert app.env is not None
    old = app.env.replace('GREETING=say "hi"', 'GREETING="say \\"hi\\""')
    assert old != app.env
    await dokploy(runtime).application_save_environment(owned.object_id, old)
    again = await compute_plan(runtime, [LANE])
    changes = [c.field for a in again.actions if a.op == Op.set_env for c in a.changes]
    assert changes == ["env.GREETING"]


async def test_a_secret_dokploy_would_change_blocks_its_lanes_by_key_not_value(
    runtime: Runtime,
) -> None:
    assert runtime.environ is not None
    value = "postgres://shop:pw@db/shop?x=${{project.DB}}"
    runtime.environ = {**runtime.environ, "SETPOINT_SECRET_SHOP_DATABASE_URL": value}
    plan = await compute_plan(runtime, ["product:shop/testing", "product:shop/prod"])
    refused = [b for b in plan.blockers if b.type == BlockerType.invalid_desired_state]
    assert {b.lane for b in refused} == {"product:shop/testing", "product:shop/prod"}
    assert all("DATABASE_URL" in b.message and "${{" in b.message for b in refused)
    assert value not in plan.model_dump_json() and "pw@db" not in plan.model_dump_json()
    assert [a for a in plan.actions if a.op == Op.set_env] == []


async def test_an_env_change_keeps_an_adopted_services_build_settings(
    runtime: Runtime, tmp_path: Path
) -> None:
    (tmp_path / "notes.yaml").write_text(NOTES)
    store_fleet(runtime.database, tmp_path)
    client = dokploy(runtime)
    created = await client.project_create("notes")
    app = await client.application_create("notes-testing", created.environment.environment_id)
    await client.application_save_docker_provider(app.application_id, docker_image="nginx:1")
    await client.application_save_environment(
        app.application_id,
        "KEEP=me\n",
        build_args="NODE_ENV=production",
        build_secrets="NPM_TOKEN=not-a-real-token",
        create_env_file=False,
    )
    await adopt(runtime, LANE, "application", app.application_id, record=True)
    plan = await compute_plan(runtime, [LANE])
    assert Op.set_env in [a.op for a in plan.actions]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    after = await client.application_one(app.application_id)
    assert parse(after.env) == {"KEEP": "me", **WANTED}
    assert (after.build_args, after.build_secrets, after.create_env_file) == (
        "NODE_ENV=production",
        "NPM_TOKEN=not-a-real-token",
        False,
    )
