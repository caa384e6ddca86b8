"""Adoption: an existing service joins a lane only by an explicit, audited step."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from reconciler.core.adoption import adopt
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.errors import AdoptionRefused
from reconciler.kinds.product.ops import Op
from reconciler.records import audit
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime
from tests.reconciler.conftest import dokploy, owned_service_of
from tests.support.fleets import hand_made_docs_service


async def test_preview_shows_what_would_change_and_records_nothing(
    runtime: Runtime, engine: Engine
) -> None:
    service_id = await hand_made_docs_service(runtime, "nginx:1")
    preview = await adopt(
        runtime, "product:docs-site/testing", "application", service_id, record=False
    )
    ops = [a.op for a in preview.diff.actions]
    assert Op.set_image in ops and Op.upsert_domain in ops and Op.deploy in ops
    assert Op.create_application not in ops
    assert owned_service_of(engine, "product:docs-site/testing") is None


async def test_adopted_service_is_converged_in_place_keeping_unowned_env(
    runtime: Runtime, engine: Engine
) -> None:
    service_id = await hand_made_docs_service(runtime, "nginx:1")
    blocked = await compute_plan(runtime, ["product:docs-site/testing"])
    assert [b.type for b in blocked.blockers] == [BlockerType.not_owned]

    await adopt(runtime, "product:docs-site/testing", "application", service_id, record=True)
    with session_scope(engine) as session:
        adopted = audit.list_records(session, event="adopted")
    assert [r.lane for r in adopted] == ["product:docs-site/testing"]
    assert adopted[0].data["service_id"] == service_id

    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert plan.blockers == []
    assert Op.create_application not in [a.op for a in plan.actions]
    assert (await apply_plan(runtime, plan.plan_id)).ok
    app = await dokploy(runtime).application_one(service_id)
    assert app.docker_image == "ghcr.io/acme/docs:main"
    assert app.env is not None and "# hand-made\nKEEP=me" in app.env  # not Setpoint's: kept
    assert (await compute_plan(runtime, ["product:docs-site/testing"])).actions == []


async def test_adopting_an_already_matching_service_owes_no_deploy(runtime: Runtime) -> None:
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert (await apply_plan(runtime, plan.plan_id)).ok
    # Simulate losing the registry entry, then adopting the same service back.
    from reconciler.records import ownership

    owned = owned_service_of(runtime.database, "product:docs-site/testing")
    assert owned is not None
    with session_scope(runtime.database) as session:
        ownership.record_release(session, owned.ref)
    preview = await adopt(
        runtime, "product:docs-site/testing", "application", owned.object_id, record=True
    )
    assert preview.diff.actions == []
    assert (await compute_plan(runtime, ["product:docs-site/testing"])).actions == []


async def test_refusals(runtime: Runtime) -> None:
    with pytest.raises(AdoptionRefused, match="not a desired lane"):
        await adopt(runtime, "product:nope/testing", "application", "x", record=False)
    with pytest.raises(AdoptionRefused, match="is a compose lane"):
        await adopt(runtime, "product:ledger/testing", "application", "x", record=False)
    with pytest.raises(AdoptionRefused, match="Dokploy has no application"):
        await adopt(runtime, "product:docs-site/testing", "application", "missing-id", record=False)
    plan = await compute_plan(runtime, ["product:docs-site/testing"])
    assert (await apply_plan(runtime, plan.plan_id)).ok
    with pytest.raises(AdoptionRefused, match="already owns a service"):
        await adopt(runtime, "product:docs-site/testing", "application", "x", record=False)
