"""Prometheus metrics for the API: requests by route and status, latency, refusals, and
what the records hold at scrape time (operations by status, the work queue's depth).

Each app has a registry of its own, so several apps in one process (tests, or the API and
the plan review page) never collide on a metric name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from providers.github.webhooks import GITHUB_EVENTS
from reconciler.kinds import declared_reasons
from reconciler.records.database import session_scope, table_of
from reconciler.records.operations import Operation, OperationStatus
from reconciler.records.status import LaneStatusRow, Reason
from reconciler.records.work_queue import LaneWork, WorkPriority

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: one label, however many paths
# Labels come only from fixed sets: whatever a caller sends before it is authenticated (a
# made-up method, a made-up event) is counted as one `other`, so it cannot add series.
OTHER = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def event_label(event: str) -> str:
    return event if event in GITHUB_EVENTS else OTHER


class ApiMetrics:
    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "setpoint_api_requests",
            "API requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "setpoint_api_request_duration_seconds",
            "time to answer an API request, by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.denials = Counter(
            "setpoint_api_denials",
            "requests refused for their token or grant, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "setpoint_webhook_deliveries",
            "GitHub webhook deliveries, by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.registry.register(RecordsCollector(engine, now))

    def render(self) -> bytes:
        """The exposition text; reads the database (call it from a worker thread)."""
        return generate_latest(self.registry)


# The label values of `setpoint_lanes_stalled`: a closed set, whatever a condition says: the
# engine's blocker reasons, those the kinds declare, and the status reasons.
STALLED_REASONS = tuple(dict.fromkeys([*declared_reasons().codes(), *(r.value for r in Reason)]))


class RecordsCollector(Collector):
    """Gauges read from the records when scraped, so every replica reports the same truth."""

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = now  # the runtime's clock: a claim is held until its time on it

    def collect(self) -> Iterator[Metric]:
        operations = GaugeMetricFamily(
            "setpoint_operations", "operations by status", labels=["status"]
        )
        queue = GaugeMetricFamily(
            "setpoint_queue_depth", "lanes queued, by priority", labels=["priority"]
        )
        claimed = GaugeMetricFamily("setpoint_queue_claimed", "queued lanes a worker holds")
        stalled = GaugeMetricFamily(
            "setpoint_lanes_stalled",
            "lanes that wait for a person, by reason (credentials_refused: a provider "
            "refused Setpoint's credentials)",
            labels=["reason"],
        )
        counts, depth, held = self._read()
        for status in OperationStatus:
            operations.add_metric([status.value], counts.get(status.value, 0))
        for priority in WorkPriority:
            queue.add_metric([priority.name], depth.get(int(priority), 0))
        claimed.add_metric([], held)
        by_reason = self._stalled()
        for reason in [*STALLED_REASONS, "other"]:
            stalled.add_metric([reason], by_reason.get(reason, 0))
        yield from (operations, queue, claimed, stalled)

    def _stalled(self) -> dict[str, int]:
        """Stalled lanes by reason; a reason no one declares counts as `other`, so
        the series stay bounded whatever a condition says."""
        known = set(STALLED_REASONS)
        with session_scope(self._engine) as session:
            rows = session.exec(select(col(LaneStatusRow.conditions))).all()
        found: dict[str, int] = {}
        for conditions in rows:
            for condition in conditions or []:
                if condition.get("type") == "Stalled" and condition.get("status") == "True":
                    reason = condition.get("reason")
                    key = reason if reason in known else "other"
                    found[key] = found.get(key, 0) + 1
        return found

    def _read(self) -> tuple[dict[str, int], dict[int, int], int]:
        ops = table_of(Operation)
        work = table_of(LaneWork)
        with session_scope(self._engine) as session:
            counts = session.execute(
                sa.select(ops.c.status, sa.func.count()).group_by(ops.c.status)
            ).all()
            depth = session.execute(
                sa.select(work.c.priority, sa.func.count()).group_by(work.c.priority)
            ).all()
            held = session.execute(
                sa.select(sa.func.count()).where(work.c.claimed_until > self._now())
            ).scalar_one()
        return {s: n for s, n in counts}, {p: n for p, n in depth}, int(held)


class MeasureRequests:
    """Counts and times each request under its route template (`/v1/operations/{operation_id}`),
    never its raw path, so lane names and ids do not multiply the series."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = method_label(scope.get("method", "GET"))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
