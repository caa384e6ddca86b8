"""A plan that deletes one lane and creates a matching one says that it looks like a rename."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.runtime import Runtime
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import store_fleet


async def test_a_renamed_lane_is_noted_as_a_rename(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    first = await compute_plan(runtime)
    assert (await apply_plan(runtime, first.plan_id)).ok
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        (fleet / file.name).write_text(file.read_text())
    docs = fleet / "docs-site.yaml"
    docs.write_text(docs.read_text().replace("- name: testing", "- name: staging", 1))
    store_fleet(engine, fleet, prune=True)
    plan = await compute_plan(runtime)
    assert {a.lane for a in plan.actions if a.op == Op.delete_service} == {
        "product:docs-site/testing"
    }
    renames = [note for note in plan.notes if "looks like a rename" in note]
    assert renames == [
        "product:docs-site/staging: looks like a rename of product:docs-site/testing: this plan "
        "deletes dokploy:application/docs-site-testing and creates "
        "dokploy:application/docs-site-staging; nothing carries over between them"
    ]
    # An unrelated plan says nothing of the kind.
    assert not any("rename" in note for note in first.notes)
