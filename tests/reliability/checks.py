"""What must hold after any fault or crash, once Setpoint has been left to recover.

Each check returns the problems it found as sentences (empty: all well), so the tests can
assert on them and the bench can print them.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from providers.dokploy.emulator.state import EmulatorState
from reconciler.kinds.product.observed import SERVICE_TYPES, owned_service
from reconciler.records import audit, leases, ownership
from reconciler.records.database import session_scope
from tests.support.secret_scan import find_secrets


def _repeated(what: str, keys: Iterable[Any]) -> list[str]:
    counts = Counter(keys)
    return [f"duplicate {what}: {key} x{n}" for key, n in sorted(counts.items(), key=str) if n > 1]


def duplicates(state: EmulatorState) -> list[str]:
    """Two Dokploy objects with one identity: a project name, an environment name in a
    project, a service name in an environment, a domain's host and path."""
    services = [*state.applications.values(), *state.composes.values()]
    return [
        *_repeated("project", (p["name"] for p in state.projects.values())),
        *_repeated(
            "environment", ((e["projectId"], e["name"]) for e in state.environments.values())
        ),
        *_repeated("service", ((s["environmentId"], s["name"]) for s in services)),
        *_repeated("domain", ((d["host"], d.get("path") or "/") for d in state.domains.values())),
    ]


def deployed_twice(state: EmulatorState) -> list[str]:
    """Services Dokploy was asked to deploy more than once (queued or built, any title)."""
    names = service_ids(state)
    return [
        f"{names.get(service_id, service_id)} deployed {len(builds)} times"
        for service_id, builds in sorted(state.builds.items())
        if len(builds) > 1
    ]


def service_ids(state: EmulatorState) -> dict[str, str]:
    """Service id -> name, of every application and compose service in Dokploy."""
    rows = [
        *((i, r["name"]) for i, r in state.applications.items()),
        *((i, r["name"]) for i, r in state.composes.items()),
    ]
    return dict(rows)


def owned_services(engine: Engine, lanes: Iterable[str]) -> dict[str, str | None]:
    """Lane -> id of the service the ownership registry records for it (None: none)."""
    snapshot = ownership.snapshot(engine)
    found = {}
    for lane in lanes:
        owned = owned_service(snapshot.for_lane(lane))
        found[lane] = owned.object_id if owned is not None else None
    return found


def lanes_have_services(
    engine: Engine, state: EmulatorState, lanes: Mapping[str, str]
) -> list[str]:
    """Every lane (key -> service name) has its service, owned by it, in Dokploy."""
    existing = service_ids(state)
    problems = []
    for lane, service_id in owned_services(engine, lanes).items():
        if service_id is None:
            problems.append(f"{lane}: owns no service")
        elif existing.get(service_id) != lanes[lane]:
            problems.append(f"{lane}: its service {service_id} is not in Dokploy")
    return problems


def kept(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> list[str]:
    """The lanes' services are the very ones they had before (not deleted and made again)."""
    return [
        f"{lane}: service {before[lane]} was replaced by {after.get(lane)}"
        for lane in sorted(before)
        if before[lane] != after.get(lane)
    ]


def registry_matches(engine: Engine, state: EmulatorState) -> list[str]:
    """Every service the ownership registry says Setpoint owns exists in Dokploy."""
    existing = service_ids(state)
    return [
        f"{owned.lane}: the registry owns {owned.object_type} {owned.object_id}, "
        "which Dokploy no longer has"
        for owned in ownership.snapshot(engine).objects
        if owned.object_type in SERVICE_TYPES and owned.object_id not in existing
    ]


def gone(state: EmulatorState, names: Iterable[str]) -> list[str]:
    left = set(service_ids(state).values())
    return [f"service {name} should have been deleted" for name in names if name in left]


def chain_verifies(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        result = audit.verify_chain(session)
    if result.ok:
        return []
    return [f"audit chain broken at record {result.first_bad_seq}: {result.reason}"]


def audit_export(engine: Engine) -> str:
    out = io.StringIO()
    with session_scope(engine) as session:
        audit.export_jsonl(session, out)
    return out.getvalue()


def no_lease_left(engine: Engine) -> list[str]:
    return [f"lease left on {lease.lane} by {lease.holder}" for lease in leases.all_leases(engine)]


def no_secret(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Names a leaked secret by its position, never by its value."""
    wanted = list(secrets)
    found = set(find_secrets("\n".join(texts), wanted))
    return [f"secret #{i} appears in the output" for i, s in enumerate(wanted) if s in found]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback, if any


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line (DEBUG and up, tracebacks included) while the block runs."""
    root = logging.getLogger()
    handler, level = _Lines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
