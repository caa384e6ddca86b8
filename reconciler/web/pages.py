"""The read-only pages: lanes, one lane, plans, one plan, audit, one record, previews, runners.

Handlers are plain functions: FastAPI runs them in worker threads, so the storage reads
never stall the event loop a service shares with them. Every address here is stable, so a
link pasted into a PR comment keeps working: /lanes/{kind}/{name}, /plans/{id}, /audit/{seq}.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reconciler.core.failure_evidence import evidence_of
from reconciler.core.plans import lane_key
from reconciler.errors import PlanNotFound
from reconciler.records import known_good, lane_health, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.plan_store import PlanStatus
from reconciler.web import readouts
from reconciler.web.applying import RunningApplies
from reconciler.web.readouts import AuditFilter, LaneFilter
from reconciler.web.site import Reader, ReviewSite
from reconciler.web.templating import Pages

CONDITIONS = ("Ready", "Reconciling", "Stalled", "Degraded", "NotReady")
MAX_AUDIT_ROWS = 1000


class ReadPages:
    """The read-only pages, each a method; `add_routes` adds them to a router."""

    def __init__(self, site: ReviewSite, pages: Pages, running: RunningApplies) -> None:
        self.site, self.pages, self.running = site, pages, running

    def add_routes(self, router: APIRouter, reader: Reader) -> None:
        guarded = [Depends(reader)]
        router.add_api_route("/", self.show_home, include_in_schema=False)
        for path, handler in (
            ("/lanes", self.show_lanes),
            ("/lanes/{kind}/{name:path}", self.show_lane),
            ("/plans", self.show_plans),
            ("/plans/{plan_id}", self.show_plan),
            ("/audit", self.show_audit),
            ("/audit/{seq}", self.show_audit_record),
            ("/previews", self.show_previews),
            ("/runners", self.show_runners),
        ):
            router.add_api_route(path, handler, dependencies=guarded, include_in_schema=False)

    def show_home(self) -> Response:
        return RedirectResponse(f"{self.pages.prefix}/lanes", status_code=303)

    def show_lanes(
        self, request: Request, kind: str = "", product: str = "", condition: str = ""
    ) -> Response:
        everything = readouts.lane_lines(self.site.database, now=self.site.clock())
        wanted = LaneFilter(kind, product, condition)
        return self.pages.respond(
            request,
            "lanes.html",
            title="Lanes",
            lanes=[line for line in everything if wanted.keeps(line)],
            wanted=wanted,
            kinds=sorted({line.kind for line in everything}),
            products=sorted({line.product for line in everything}),
            conditions=CONDITIONS,
            total=len(everything),
        )

    def show_lane(self, request: Request, kind: str, name: str) -> Response:
        key = lane_key(kind, name)
        line = readouts.lane_line(self.site.database, key, self.site.clock())
        if line is None:
            return missing(request, self.pages, f"no lane {key} has a status or owns objects")
        recent = readouts.shown_as(
            self.site.database,
            plan_store.summaries(self.site.database, lane=key, limit=10),
            self.site.clock(),
        )
        trail = readouts.audit_page(self.site.database, AuditFilter(lane=key, limit=20))
        health = lane_health.latest(self.site.database, [key]).get(key)
        failure = next(iter(evidence_of(self.site.database, lane=key, limit=1)), None)
        return self.pages.respond(
            request,
            "lane.html",
            title=key,
            lane=line,
            plans=recent,
            records=trail.records,
            good_states=known_good.history(self.site.database, key),
            health=health,
            failure=failure,
        )

    def show_plans(
        self, request: Request, lane: str = "", creator: str = "", status: str = ""
    ) -> Response:
        statuses = [*(s.value for s in PlanStatus), readouts.EXPIRED]
        known = status in statuses
        stored = plan_store.summaries(
            self.site.database,
            lane=lane or None,
            created_by=creator or None,
            limit=readouts.PLANS_LOOKED_AT,
        )
        shown = readouts.shown_as(self.site.database, stored, self.site.clock())
        found = [p for p in shown if not status or p.status == status][:100]
        return self.pages.respond(
            request,
            "plans.html",
            title="Plans",
            plans=found if known or not status else [],
            lane=lane,
            creator=creator,
            status=status,
            statuses=statuses,
            unknown_status=status if status and not known else "",
        )

    def show_plan(self, request: Request, plan_id: str) -> Response:
        try:
            page = readouts.plan_page(self.site.database, plan_id, self.site.clock())
        except PlanNotFound:
            return missing(request, self.pages, f"no stored plan {plan_id}")
        following = self.running.underway(plan_id) or page.status == PlanStatus.applying
        return self.pages.respond(
            request, "plan.html", title=f"Plan {plan_id}", page=page, following=following
        )

    def show_audit(
        self, request: Request, lane: str = "", plan: str = "", event: str = "", limit: int = 100
    ) -> Response:
        known = event in AuditEvent.__members__.values()
        wanted = AuditFilter(lane, plan, event if known else "", max(1, min(limit, MAX_AUDIT_ROWS)))
        page = readouts.audit_page(self.site.database, wanted)
        return self.pages.respond(
            request,
            "audit.html",
            title="Audit trail",
            page=page,
            wanted=wanted,
            events=[e.value for e in AuditEvent],
            unknown_event=event if event and not known else "",
        )

    def show_audit_record(self, request: Request, seq: int) -> Response:
        record, later = readouts.audit_entry(self.site.database, seq)
        if record is None:
            return missing(request, self.pages, f"no audit record #{seq}")
        return self.pages.respond(
            request, "audit_record.html", title=f"Audit #{seq}", record=record, later=later
        )

    def show_previews(self, request: Request) -> Response:
        found = readouts.preview_lines(self.site.database, self.site.clock())
        return self.pages.respond(request, "previews.html", title="Previews", previews=found)

    def show_runners(self, request: Request) -> Response:
        found = readouts.runner_lines(self.site.database, self.site.clock())
        return self.pages.respond(request, "runners.html", title="Runners", runners=found)


def missing(request: Request, pages: Pages, message: str) -> Response:
    return pages.respond(request, "message.html", 404, title="Not found", message=message)
