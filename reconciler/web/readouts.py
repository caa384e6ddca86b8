"""What the review pages show, read from the records: lanes, plans, audit, previews, runners.

Read-only: nothing here writes. Lanes come from their status rows, plus any lane that owns
objects but has no status yet, so a kind this module never names (runner lanes, built
elsewhere) is listed from the records alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine

from reconciler.core.plans import (
    Action,
    Blocker,
    BlockerType,
    Plan,
    Risk,
    kind_of_lane,
    name_of_lane,
)
from reconciler.core.recovery import shown_statuses
from reconciler.fleet import load_fleet
from reconciler.kinds import kind_listings
from reconciler.presentation.words import lane_state, speaking_condition
from reconciler.records import audit, ownership, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.plan_store import PlanSummary
from reconciler.runtime import utcnow
from reconciler.web.advice import advice_for

PLANS_LOOKED_AT = 2000
EXPIRED = "expired"  # shown, never stored: a pending plan past its expiry


def lane_path(lane: str) -> str:
    """The stable address of a lane's page: /lanes/{kind}/{name}."""
    return f"/lanes/{quote(kind_of_lane(lane) or '-')}/{quote(name_of_lane(lane))}"


def product_of(lane: str) -> str:
    """The product (or pool) a lane belongs to: the first part of its name."""
    return name_of_lane(lane).split("/", 1)[0]


@dataclass(frozen=True)
class OwnedLine:
    provider: str
    object_type: str
    name: str
    object_id: str
    protected: bool


@dataclass
class LaneLine:
    key: str
    conditions: list[dict[str, Any]]
    state: str
    reason: str
    message: str
    waits_for: str
    drift: str
    last_plan: PlanSummary | None = None
    last_applied: str | None = None
    updated_at: datetime | None = None
    owned: list[OwnedLine] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return kind_of_lane(self.key)

    @property
    def name(self) -> str:
        return name_of_lane(self.key)

    @property
    def product(self) -> str:
        return product_of(self.key)

    @property
    def path(self) -> str:
        return lane_path(self.key)

    def shows(self, state: str) -> bool:
        """Does the lane match a condition filter (its state, or a condition that is True)?"""
        return state in (self.state, *(c["type"] for c in self.conditions if c["status"] == "True"))


@dataclass(frozen=True)
class LaneFilter:
    kind: str = ""
    product: str = ""
    condition: str = ""

    def keeps(self, line: LaneLine) -> bool:
        return (
            (not self.kind or line.kind == self.kind)
            and (not self.product or line.product == self.product)
            and (not self.condition or line.shows(self.condition))
        )


def lane_lines(
    engine: Engine, wanted: LaneFilter = LaneFilter(), now: datetime | None = None
) -> list[LaneLine]:
    """Every lane of every kind that has a status or owns objects, filtered."""
    owned = _owned_by_lane(engine)
    plans = _newest_plan_by_lane(standing_summaries(engine, now))
    drift = _last_pass_news(engine)
    found: dict[str, LaneLine] = {}
    for row in shown_statuses(engine, now or utcnow()):
        speaking = speaking_condition(row.conditions)
        line = LaneLine(
            key=row.lane,
            conditions=row.conditions,
            state=lane_state(row.conditions),
            reason=str(speaking.get("reason", "")),
            message=str(speaking.get("message", "")),
            waits_for="",
            drift="",
            last_plan=plans.get(row.lane),
            last_applied=row.last_applied_plan,
            updated_at=row.updated_at,
        )
        line.waits_for = _waits_for(line, row.retry_at)
        found[row.lane] = line
    for lane in owned.keys() - found.keys():
        found[lane] = _unplanned(lane, plans.get(lane))
    for line in found.values():
        line.owned = owned.get(line.key, [])
        line.drift = drift(line.key)
    return [found[k] for k in sorted(found) if wanted.keeps(found[k])]


def lane_line(engine: Engine, key: str, now: datetime | None = None) -> LaneLine | None:
    return next((line for line in lane_lines(engine, now=now) if line.key == key), None)


def _unplanned(lane: str, last_plan: PlanSummary | None) -> LaneLine:
    return LaneLine(
        key=lane,
        conditions=[],
        state="NotReady",
        reason="NoStatus",
        message="owns objects but has no status yet: the next plan or pass gives it one",
        waits_for="a plan or a scheduled pass",
        drift="",
        last_plan=last_plan,
    )


def _waits_for(line: LaneLine, retry_at: datetime | None) -> str:
    """What has to happen next for the lane to move on, in a few words."""
    if retry_at is not None:
        return f"its retry after {retry_at:%Y-%m-%d %H:%M:%S} UTC ({line.message})"
    plan = line.last_plan
    pending = plan is not None and plan.status == plan_store.PlanStatus.pending
    if line.state == "Ready":
        return "nothing"  # its Why already says the observed state matches
    if line.state == "Reconciling":
        return "the apply that is running"
    if pending and plan is not None and plan.blockers:
        return f"its blockers to clear (plan {plan.plan_id})"
    if pending and plan is not None:
        return f"an operator to apply plan {plan.plan_id}"
    if line.state == "Stalled":
        return "an operator: " + line.message
    return "the next plan or scheduled pass"


def _owned_by_lane(engine: Engine) -> dict[str, list[OwnedLine]]:
    found: dict[str, list[OwnedLine]] = {}
    for item in ownership.snapshot(engine).objects:
        found.setdefault(item.lane, []).append(
            OwnedLine(item.provider, item.object_type, item.name, item.object_id, item.protected)
        )
    return found


def _newest_plan_by_lane(found: list[PlanSummary]) -> dict[str, PlanSummary]:
    """Per lane, the newest plan that changes or blocks it (a whole-fleet plan that only
    looked at a lane is not its "last plan")."""
    newest: dict[str, PlanSummary] = {}
    for summary in found:
        for lane in summary.acting_lanes:
            newest.setdefault(lane, summary)
    return newest


def plan_standings(found: list[PlanSummary], now: datetime) -> dict[str, str]:
    """Each plan's status as the pages show it, from plans listed newest first: a pending
    plan past its expiry is expired, and one whose every lane it changes a newer plan has
    looked at again is superseded (that newer plan is the one to review and apply)."""
    looked_at_later: set[str] = set()
    shown: dict[str, str] = {}
    for summary in found:
        shown[summary.plan_id] = _standing(summary, looked_at_later, now)
        looked_at_later.update(summary.lanes)
    return shown


def _standing(summary: PlanSummary, looked_at_later: set[str], now: datetime) -> str:
    if summary.status != plan_store.PlanStatus.pending:
        return summary.status
    if now >= summary.expires_at:
        return EXPIRED
    if set(summary.acting_lanes or summary.lanes) <= looked_at_later:
        return plan_store.PlanStatus.superseded.value
    return summary.status


def standing_summaries(engine: Engine, now: datetime | None = None) -> list[PlanSummary]:
    """The newest stored plans, newest first, each with the status the pages show."""
    found = plan_store.summaries(engine, limit=PLANS_LOOKED_AT)
    shown = plan_standings(found, now or utcnow())
    return [replace(summary, status=shown[summary.plan_id]) for summary in found]


def _last_pass_news(engine: Engine) -> Callable[[str], str]:
    """A function saying, per lane, what the last scheduled pass found there."""
    with session_scope(engine) as session:
        last = audit.list_records(session, event=AuditEvent.pass_completed, limit=1)
    if not last:
        return lambda _: "no scheduled pass has run yet"
    record = last[0]
    news: dict[str, str] = dict(record.data.get("lanes_with_news", {}))
    at = f"{record.at:%Y-%m-%d %H:%M} UTC"

    def news_of(lane: str) -> str:
        outcome = news.get(lane)
        if outcome is None:
            return f"none found by the pass of {at} (#{record.seq})"
        return f"{outcome.replace('_', ' ')} at the pass of {at} (#{record.seq})"

    return news_of


@dataclass(frozen=True)
class LaneGroup:
    """One lane's part of a plan: its actions in apply order and what blocks it."""

    lane: str
    actions: list[Action]
    blockers: list[Blocker]

    @property
    def path(self) -> str:
        return lane_path(self.lane)


@dataclass(frozen=True)
class PlanPage:
    plan: Plan
    status: str
    groups: list[LaneGroup]
    plan_blockers: list[Blocker]  # about the whole plan, or every lane of a kind
    last_refusal: audit.AuditRecord | None = None

    @property
    def destructive(self) -> int:
        return sum(1 for a in self.plan.actions if a.risk is Risk.destructive)

    @property
    def applicable(self) -> bool:
        return self.status == plan_store.PlanStatus.pending

    @property
    def needs_allowance(self) -> bool:
        return any(b.type == BlockerType.blast_radius_exceeded for b in self.plan.blockers)

    def advice(self, blocker: Blocker) -> str:
        return advice_for(blocker)


def shown_as(
    engine: Engine, found: list[PlanSummary], now: datetime | None = None
) -> list[PlanSummary]:
    """`found` with each plan's status as the pages show it (see `plan_standings`)."""
    shown = {s.plan_id: s.status for s in standing_summaries(engine, now)}
    return [replace(s, status=shown.get(s.plan_id, s.status)) for s in found]


def plan_page(engine: Engine, plan_id: str, now: datetime | None = None) -> PlanPage:
    """The plan's lanes in the order apply first reaches them (raises PlanNotFound)."""
    plan, stored = plan_store.load(engine, plan_id)
    shown = {s.plan_id: s.status for s in standing_summaries(engine, now)}
    order = list(dict.fromkeys([a.lane for a in plan.actions] + list(plan.lanes)))
    groups = [
        LaneGroup(
            lane,
            plan.lane_actions(lane),
            [b for b in plan.blockers if b.lane == lane],
        )
        for lane in order
    ]
    whole = [b for b in plan.blockers if b.lane is None]
    with session_scope(engine) as session:
        refusals = audit.list_records(
            session, plan_id=plan_id, event=AuditEvent.apply_refused, limit=1
        )
        session.expunge_all()
    status = shown.get(plan_id, stored.value)
    return PlanPage(plan, status, groups, whole, refusals[0] if refusals else None)


@dataclass(frozen=True)
class AuditFilter:
    lane: str = ""
    plan_id: str = ""
    event: str = ""
    limit: int = 100


@dataclass(frozen=True)
class AuditPage:
    records: list[audit.AuditRecord]
    verification: audit.ChainVerification


def audit_page(engine: Engine, wanted: AuditFilter) -> AuditPage:
    with session_scope(engine) as session:
        records = audit.list_records(
            session,
            lane=wanted.lane or None,
            plan_id=wanted.plan_id or None,
            event=AuditEvent(wanted.event) if wanted.event else None,
            limit=wanted.limit,
        )
        verification = audit.verify_chain(session)
        session.expunge_all()
    return AuditPage(list(reversed(records)), verification)


# The words of a record's data worth a place in its one-line summary, in that order.
SUMMARY_KEYS = ("op", "target", "result", "status", "outcome", "blocker", "message", "reason")
SUMMARY_WIDTH = 160


def audit_summary(record: audit.AuditRecord) -> str:
    """One line: what happened, to which lane, by whom, and the record's own words."""
    where = f" on {record.lane}" if record.lane else ""
    words = [
        str(record.data[key])
        for key in SUMMARY_KEYS
        if isinstance(record.data.get(key), str | int) and str(record.data[key])
    ]
    detail = f": {' · '.join(words)}" if words else ""
    text = f"{record.event.replace('_', ' ')}{where} by {record.actor}{detail}"
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def audit_entry(engine: Engine, seq: int) -> tuple[audit.AuditRecord | None, bool]:
    """The record, and whether a later one exists (for the page's "next" link)."""
    with session_scope(engine) as session:
        record = audit.get_record(session, seq)
        if record is not None:
            session.expunge(record)
        later = audit.get_record(session, seq + 1) is not None
        return record, later


@dataclass(frozen=True)
class PreviewLine:
    lane: str
    repository: str
    number: int
    head: str
    state: str
    detail: str
    status: LaneLine | None
    url: str | None  # where the preview answers, when its policy gives it a domain
    pull_request_url: str

    @property
    def path(self) -> str:
        return lane_path(self.lane)


def preview_lines(engine: Engine, now: datetime | None = None) -> list[PreviewLine]:
    """Every preview anchor (the preview kind's listing): its PR, head, state, address, and
    its lane's status if it has one."""
    by_lane = {line.key: line for line in lane_lines(engine, now=now)}
    listing = kind_listings()["previews"].from_records
    assert listing is not None
    rows = listing(load_fleet(engine), ownership.snapshot(engine), now or utcnow())
    return [
        PreviewLine(
            lane=row["lane"],
            repository=row["repository"],
            number=row["pullRequest"],
            head=row["headSha"][:7],
            state=row["state"],
            detail=row["detail"],
            status=by_lane.get(row["lane"]),
            url=row["url"],
            pull_request_url=row["pullRequestUrl"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class RunnerLine:
    lane: LaneLine
    github: list[str]  # each registration's status on GitHub as the last survey saw it


def runner_lines(engine: Engine, now: datetime | None = None) -> list[RunnerLine]:
    """Lanes of the kind the runners page lists, from status and ownership records alone,
    with their registrations' GitHub status (the kind's listing from the records)."""
    listing = kind_listings()["runners"]
    assert listing.from_records is not None
    rows = listing.from_records(load_fleet(engine), ownership.snapshot(engine), now or utcnow())
    seen: dict[str, list[str]] = {}
    for row in rows:
        seen.setdefault(row["lane"], []).append(_github_words(row))
    lanes = lane_lines(engine, LaneFilter(kind=listing.kind), now)
    return [RunnerLine(line, seen.get(line.key, [])) for line in lanes]


def _github_words(row: dict[str, Any]) -> str:
    """`setpoint-ci-1: online, busy`; a registration no survey has seen yet says so."""
    status = row["githubStatus"]
    if status is None:
        return f"{row['runner']}: not seen yet"
    busy = "" if status != "online" else (", busy" if row["busy"] else ", idle")
    return f"{row['runner']}: {status}{busy}"
