"""Record an adoption: an unowned outside object becomes a lane's, explicitly and audited.

The kind works out the claim (`kinds/<kind>/adopt.py`); this records it in the ownership
registry and the audit trail in one transaction (Invariant 4: adoption is an explicit,
audited step).
"""

from __future__ import annotations

from reconciler.core.outcomes import Claim
from reconciler.core.plans import kind_of_lane
from reconciler.records import audit, ownership
from reconciler.records.audit import AuditEvent
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime


def _record(runtime: Runtime, lane: str, claim: Claim, would_change: list[str]) -> None:
    with audit.transaction(runtime.engine) as session:
        ownership.record_claim(session, claim, kind=kind_of_lane(lane), lane=lane, adopted=True)
        audit.append(
            session,
            event=AuditEvent.adopted,
            actor=runtime.actor,
            lane=lane,
            data={
                "provider": claim.ref.provider,
                "service_type": claim.ref.object_type,
                "service_id": claim.ref.object_id,
                "name": claim.name,
                "would_change": would_change,
            },
        )


async def record_adoption(
    runtime: Runtime, lane: str, claim: Claim, would_change: list[str]
) -> None:
    await in_thread(_record, runtime, lane, claim, would_change)
