"""The real Dokploy v0.30.2 server is the oracle (tests/contracts/dokploy-real-v0.30.2/).

Every recorded request is replayed against the emulator, in process and in scenario order,
and the answers are compared status by status, key by key and type by type, with the error
messages and the order of listed rows (ignoring ids, times, appName suffixes and the dev-mode
`data.stack`). What still differs is listed in KNOWN_DIFFERENCES with its reason, and in
docs/providers/dokploy.md; a difference that is neither fixed nor listed fails the test, and
so does a listed one that no longer shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from providers.dokploy.emulator import create_app
from tests.providers.dokploy.recording import (
    Exchange,
    exchanges,
    learn_ids,
    orders,
    shape,
    with_ids,
)

API_KEY = "replay-key-not-secret"
BASE_URL = "http://dokploy.test"

# Differences that remain, each with why it does not matter to Setpoint. The same list is in
# docs/providers/dokploy.md ("Where the emulator differs from a real server").
KNOWN_DIFFERENCES: dict[str, str] = {
    "POST application.start 500: status 500, emulator 200": (
        "the recording server has no container runtime, so `docker service scale` fails; "
        "a server that runs services answers 200"
    ),
    "GET deployment.all 200: $[].finishedAt is null|string, emulator string": (
        "timing: some real polls came while a build ran (finishedAt null until it ends); the "
        "replay settles builds at once. The emulator shows running rows when its builds take "
        "time (build_seconds)"
    ),
    "GET deployment.allByCompose 200: $[].finishedAt is null|string, emulator string": (
        "timing, as for deployment.all"
    ),
    "GET /notdokploy/api/user.get 404: content text/html, emulator text/plain": (
        "outside /api the real server answers its web app's HTML 404 page; both are 404 "
        "and not JSON, which the client reports as a wrong URL"
    ),
}


@dataclass
class Comparison:
    """What the replay saw, summed over every exchange of one procedure and status."""

    real: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    emulated: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    # (where, list path) -> the orders seen; a list the real server shows in both orders
    # has no order to match (e.g. deployments inside application.one: no ORDER BY there).
    real_orders: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    emu_orders: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    found: set[str] = field(default_factory=set)

    def differences(self) -> set[str]:
        out = set(self.found)
        for where, real in self.real.items():
            out |= _shape_differences(where, real, self.emulated[where])
        for (where, path), real_order in self.real_orders.items():
            emu_order = self.emu_orders.get((where, path), real_order)
            if len(real_order) == 1 and emu_order != real_order:
                said = "|".join(sorted(emu_order))
                out.add(f"{where}: {path} {next(iter(real_order))}, emulator {said}")
        return out


def _shape_differences(
    where: str, real: set[tuple[str, str]], emu: set[tuple[str, str]]
) -> set[str]:
    out: set[str] = set()
    real_types: dict[str, set[str]] = defaultdict(set)
    emu_types: dict[str, set[str]] = defaultdict(set)
    for path, kind in real:
        real_types[path].add(kind)
    for path, kind in emu:
        emu_types[path].add(kind)
    for path in real_types.keys() - emu_types.keys():
        out.add(f"{where}: {path} only in the real answer")
    for path in emu_types.keys() - real_types.keys():
        out.add(f"{where}: {path} only in the emulator's answer")
    for path in real_types.keys() & emu_types.keys():
        if real_types[path] != emu_types[path]:
            r, e = "|".join(sorted(real_types[path])), "|".join(sorted(emu_types[path]))
            out.add(f"{where}: {path} is {r}, emulator {e}")
    return out


def _messages(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    issues = body.get("issues")
    said = [str(i.get("message")) for i in issues] if isinstance(issues, list) else []
    return [str(body.get("message")), *said]


def _request(ex: Exchange, ids: dict[str, str]) -> dict[str, Any]:
    kw: dict[str, Any] = {"params": with_ids(ex.query, ids)}
    if ex.request["kind"] == "json":
        kw["json"] = with_ids(ex.request["json"], ids)
    elif ex.request["kind"] == "text":
        kw["content"] = ex.request["text"]
        kw["headers"] = {"content-type": "application/x-www-form-urlencoded"}
    if ex.status == 401:  # the probes and the bad-key plan sent a wrong key
        kw.setdefault("headers", {})["x-api-key"] = "wrong-key"
    return kw


def _path(procedure: str) -> str:
    return procedure if procedure.startswith("/") else f"/api/{procedure}"


def _decoded(response: httpx.Response) -> tuple[str, Any]:
    if not response.content.strip():
        return "empty", None
    try:
        return "json", response.json()
    except ValueError:
        return "text", response.text


def _compare(ex: Exchange, response: httpx.Response, seen: Comparison) -> None:
    where = f"{ex.key} {ex.status}"
    if response.status_code != ex.status:
        seen.found.add(f"{where}: status {ex.status}, emulator {response.status_code}")
        return
    kind, body = _decoded(response)
    real_type = (ex.content_type or "").split(";")[0]
    emu_type = response.headers.get("content-type", "").split(";")[0]
    if kind != ex.response["kind"] or (kind == "text" and real_type != emu_type):
        seen.found.add(f"{where}: content {real_type}, emulator {emu_type}")
        return
    if kind != "json":
        return
    seen.real[where] |= shape(ex.json)
    seen.emulated[where] |= shape(body)
    if ex.status >= 400 and _messages(ex.json) != _messages(body):
        seen.found.add(f"{where}: says {_messages(ex.json)}, emulator {_messages(body)}")
    for path, order in orders(ex.json):
        seen.real_orders[where, path].add(order)
    for path, order in orders(body):
        seen.emu_orders[where, path].add(order)


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


async def _replay() -> Comparison:
    # Builds settle at once, so what a poll sees does not hang on the machine's speed.
    app = create_app(api_key=API_KEY, seed=11, build_seconds=0.0)
    emulator = app.state.emulator
    # The recording server has no container runtime: every build ends `error` there.
    emulator.faults.fail_next_deploy(count=10**6)
    seen = Comparison()
    ids: dict[str, str] = {}
    recorded = exchanges()
    last = _seconds(recorded[0].at)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers={"x-api-key": API_KEY}
    ) as http:
        for ex in recorded:
            # The emulator's clock follows the recording's, a little more each call, so
            # rows made in one recorded second still have distinct, ordered stamps.
            now = _seconds(ex.at)
            emulator.state.advance(max(now - last, 0.0) + 0.01)
            last = now
            response = await http.request(ex.method, _path(ex.procedure), **_request(ex, ids))
            _compare(ex, response, seen)
            if ex.response["kind"] == "json" and _decoded(response)[0] == "json":
                learn_ids(ex.json, response.json(), ids)
    return seen


def test_the_recording_is_complete() -> None:
    recorded = exchanges()
    assert len(recorded) == 550
    assert [e.seq for e in recorded] == sorted({e.seq for e in recorded})


async def test_every_difference_from_the_real_server_is_fixed_or_listed() -> None:
    seen = await _replay()
    unexplained = sorted(seen.differences() - KNOWN_DIFFERENCES.keys())
    assert not unexplained, "the emulator answers unlike real Dokploy:\n" + "\n".join(unexplained)


async def test_every_listed_difference_still_shows() -> None:
    seen = await _replay()
    stale = sorted(KNOWN_DIFFERENCES.keys() - seen.differences())
    assert not stale, "listed differences the replay no longer sees:\n" + "\n".join(stale)
