"""Env that means what the operator wrote (invariant 16)."""

from __future__ import annotations

from pathlib import Path

from providers.dokploy.emulator import Emulator
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
    store_fleet(runtime.engine, tmp_path)
    plan = await compute_plan(runtime, [LANE])
    assert (await apply_plan(runtime, plan.plan_id)).ok
    owned = owned_service_of(runtime.engine, LANE)
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
    runtime.environ = {**runtime.environ, "SHOP_DATABASE_URL": value}
    plan = await compute_plan(runtime, ["product:shop/testing", "product:shop/prod"])
    refused = [b for b in plan.blockers if b.type is BlockerType.invalid_desired_state]
    assert {b.lane for b in refused} == {"product:shop/testing", "product:shop/prod"}
    assert all("DATABASE_URL" in b.message and "${{" in b.message for b in refused)
    assert value not in plan.model_dump_json() and "pw@db" not in plan.model_dump_json()
    assert [a for a in plan.actions if a.op == Op.set_env] == []
