"""The loop's shared pass context is rebuilt when what it was built from changes, not when
the audit trail merely grows (a busy loop appends records all the time)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from reconciler.core.outcomes import Claim, ObjectRef
from reconciler.loop.contexts import MAX_AGE_SECONDS, SharedContext
from reconciler.records import audit, ownership
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import Runtime, utcnow
from tests.support.still_clock import StillClock


async def test_audit_records_alone_do_not_rebuild_the_context(
    runtime: Runtime, engine: Engine
) -> None:
    runtime.clock = clock = StillClock()
    contexts = SharedContext()
    first = await contexts.get(runtime)
    audit.record(
        engine, event=AuditEvent.pass_completed, actor="test", data={"lanes": 0}, at=utcnow()
    )
    assert await contexts.get(runtime) is first
    assert contexts.built == 1
    clock.now += MAX_AGE_SECONDS  # the kinds' clock would be too old
    assert await contexts.get(runtime) is not first
    assert contexts.built == 2


async def test_an_ownership_change_rebuilds_the_context(runtime: Runtime, engine: Engine) -> None:
    runtime.clock = StillClock()
    contexts = SharedContext()
    first = await contexts.get(runtime)
    made = Claim(ref=ObjectRef("dokploy", "application", "app-1"), name="shop-testing")
    ownership.claim(engine, made, runtime.now(), kind="product", lane="product:shop/testing")
    second = await contexts.get(runtime)
    assert second is not first
    assert second.owned.for_lane("product:shop/testing")
