"""A workflow's request for one lane, checked by the lane's kind before it is queued.

Most requests only ask for a reconcile. Some carry what the lane's desired state depends on
(a preview deployed on request takes the head SHA whose image CI just built): the lane's
kind turns them into desired-state documents, which the caller stores in the transaction
that records the request, so the request and what it changed land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from desired_state.document import Document
from reconciler.core.planning import stored_fleet_kinds
from reconciler.core.plans import kind_of_lane
from reconciler.errors import RequestRefused, UnknownLane
from reconciler.kinds.base import EventKind, LaneRequest, RequestableKind
from reconciler.runtime import Runtime


def event_lanes(runtime: Runtime, event: str, payload: Mapping[str, Any]) -> list[str]:
    """The lanes a provider's event (a GitHub webhook) may concern, as their kinds say.
    Blocking: call it in a worker thread."""
    kinds = stored_fleet_kinds(runtime)
    lanes = [
        lane
        for kind in kinds
        if isinstance(kind, EventKind)
        for lane in kind.lanes_for_event(event, payload)
    ]
    return list(dict.fromkeys(lanes))


def request_documents(runtime: Runtime, lane: str, params: Mapping[str, str]) -> list[Document]:
    """The documents a request for `lane` changes. Raises UnknownLane for a lane no kind has,
    RequestRefused when the kind refuses the request or takes no parameters. Blocking: call
    it in a worker thread."""
    kinds = stored_fleet_kinds(runtime)
    kind = next((k for k in kinds if k.name == kind_of_lane(lane)), None)
    if kind is None:
        raise UnknownLane(lane)
    if isinstance(kind, RequestableKind):  # it knows lanes that wait for this very request
        return kind.accept_request(LaneRequest(lane, params))
    if lane not in kind.lanes():
        raise UnknownLane(lane)
    if params:
        names = ", ".join(sorted(params))
        raise RequestRefused(f"{kind.name} lanes take no request parameters (got {names})")
    return []
