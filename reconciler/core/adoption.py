"""Adoption: an unowned outside object becomes a lane's, explicitly and audited.

The lane's kind works out what adopting means (`AdoptingKind.preview_adoption`); this
records the claim in the ownership registry and the audit trail in one transaction
(Invariant 4: adoption is an explicit, audited step).
"""

from __future__ import annotations

from reconciler.core.planning import load_context
from reconciler.core.plans import kind_of_lane
from reconciler.errors import AdoptionRefused, UnknownLane
from reconciler.kinds.base import AdoptingKind, AdoptionPreview
from reconciler.records import audit, ownership
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread
from reconciler.runtime import Runtime


async def adopt(
    runtime: Runtime, lane: str, object_type: str, object_id: str, *, record: bool
) -> AdoptionPreview:
    """What adopting the object into `lane` means; recorded only with `record`."""
    registry = (await load_context(runtime)).registry
    try:
        (key,) = registry.resolve([lane])
    except UnknownLane as exc:
        raise AdoptionRefused(f"{lane} is not a desired lane: {exc}") from None
    kind = registry.kind_of(key)
    if not isinstance(kind, AdoptingKind):
        raise AdoptionRefused(f"{key} is a {kind.name} lane; {kind.name} lanes adopt nothing")
    preview = await kind.preview_adoption(key, object_type, object_id)
    if record:
        await in_thread(_record, runtime, preview)
    return preview


def _record(runtime: Runtime, preview: AdoptionPreview) -> None:
    claim = preview.claim
    now = runtime.now()
    with audit.transaction(runtime.database) as session:
        ownership.record_claim(
            session,
            claim,
            now,
            kind=kind_of_lane(preview.lane),
            lane=preview.lane,
            adopted=True,
        )
        audit.append(
            session,
            event=AuditEvent.adopted,
            actor=runtime.actor,
            lane=preview.lane,
            data={
                "provider": claim.ref.provider,
                "service_type": claim.ref.object_type,
                "service_id": claim.ref.object_id,
                "name": claim.name,
                "would_change": preview.would_change,
            },
            at=now,
        )
