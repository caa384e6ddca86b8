"""Contract checks for every request the Dokploy client sends during the tests.

`RecordingTransport` wraps whatever transport a client uses (the emulator's ASGI app, a
replay of live captures, ...) and validates each request against the request schemas in
tests/contracts/dokploy-openapi.v0.30.json before passing it on: route, method,
query parameters, content type and JSON body (including keys the contract does not
know, which Dokploy would silently strip). A violation fails the test at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = REPO_ROOT / "tests" / "contracts"
OPENAPI_PATH = CONTRACTS / "dokploy-openapi.v0.30.json"
LIVE_DIR = CONTRACTS / "dokploy-live"


class ContractViolation(AssertionError):
    pass


@cache
def openapi() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
    return doc


def operation(procedure: str, method: str) -> dict[str, Any] | None:
    op = openapi()["paths"].get("/" + procedure, {}).get(method.lower())
    return op if isinstance(op, dict) else None


def request_schema(procedure: str) -> dict[str, Any]:
    op = operation(procedure, "POST")
    if op is None:
        raise KeyError(procedure)
    schema: dict[str, Any] = op["requestBody"]["content"]["application/json"]["schema"]
    return schema


def procedure_of(request: httpx.Request) -> str:
    path = request.url.path
    marker = "/api/"
    if marker not in path:
        raise ContractViolation(f"{request.method} {path}: not under /api/")
    return path.split(marker, 1)[1]


def check_request(request: httpx.Request) -> list[str]:
    """Every way this request breaks the contract (empty when it conforms)."""
    procedure = procedure_of(request)
    where = f"{request.method} {procedure}"
    op = operation(procedure, request.method)
    if op is None:
        return [f"{where}: no such operation in the contract"]
    if request.method == "GET":
        return _query_problems(request, op, where)
    return _body_problems(request, procedure, where)


def _query_problems(request: httpx.Request, op: dict[str, Any], where: str) -> list[str]:
    params = {p["name"]: p for p in op.get("parameters") or [] if p["in"] == "query"}
    sent = dict(request.url.params)
    problems = [
        f"{where}: missing query parameter {name}"
        for name, spec in params.items()
        if spec.get("required") and name not in sent
    ]
    for name, value in sent.items():
        if name not in params:
            problems.append(f"{where}: unknown query parameter {name}")
            continue
        schema = params[name].get("schema", {})
        for err in Draft202012Validator(schema).iter_errors(_query_value(value, schema)):
            problems.append(f"{where}: query {name}: {err.message}")
    if request.content:
        problems.append(f"{where}: a GET with a body")
    return problems


def _query_value(value: str, schema: dict[str, Any]) -> Any:
    """A query value is always text; trpc-to-openapi coerces it to a number where the schema
    wants one, so "100" is a valid `limit` and "ten" is not."""
    if schema.get("type") in ("number", "integer"):
        try:
            return float(value) if schema["type"] == "number" else int(value)
        except ValueError:
            return value
    return value


def _body_problems(request: httpx.Request, procedure: str, where: str) -> list[str]:
    problems: list[str] = []
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/json":
        problems.append(f"{where}: content-type {ctype!r}, contract wants application/json")
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        return [*problems, f"{where}: body is not JSON"]
    schema = request_schema(procedure)
    for err in Draft202012Validator(schema).iter_errors(body):
        path = "/".join(str(p) for p in err.absolute_path) or "<body>"
        # Report the schema rule, never the value: bodies carry env text and passwords.
        problems.append(f"{where}: {path}: fails {err.validator!r} rule")
    if isinstance(body, dict):
        unknown = set(body) - set(schema.get("properties", {}))
        problems.extend(f"{where}: key {k!r} not in contract (Dokploy strips it)" for k in unknown)
    return problems


@dataclass
class ContractRecorder:
    """Session-wide log of checked requests."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def procedures(self) -> set[str]:
        return {p for _, p in self.seen}


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: ContractRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        problems = check_request(request)
        entry = (request.method, procedure_of(request))
        self.seen.append(entry)
        self._recorder.seen.append(entry)
        if problems:
            self._recorder.violations.extend(problems)
            raise ContractViolation("; ".join(problems))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def procedures(self) -> set[str]:
        return {p for _, p in self.seen}


def live_captures() -> list[Path]:
    return sorted(p for p in LIVE_DIR.glob("v*/*.json") if not p.name.endswith("metadata.json"))


def load_capture(path: Path) -> Any:
    return json.loads(path.read_text())
