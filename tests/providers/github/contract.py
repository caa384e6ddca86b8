"""Checks HTTP exchanges and webhook payloads against GitHub's REST description.

The description is `tests/contracts/github-rest.subset.json` (from the npm package
`@octokit/openapi` 23.0.2, MIT). It is OpenAPI 3.0, so `nullable` is rewritten into
JSON Schema before validating with jsonschema (Draft 2020-12).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACTS = Path(__file__).parents[2] / "contracts"
SPEC_PATH = CONTRACTS / "github-rest.subset.json"
URI = "urn:github-rest-subset"


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema dialect -> JSON Schema 2020-12 (only what the subset uses)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def spec() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return raw


@cache
def _registry() -> Registry[Any]:
    converted = _convert(spec())
    resource: Resource[Any] = Resource.from_contents(converted, default_specification=_dialect())
    registry: Registry[Any] = Registry().with_resource(URI, resource)
    return registry


def _dialect() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def validate_at(instance: Any, pointer: str) -> list[str]:
    """Errors of `instance` against the schema at JSON pointer `pointer` of the spec."""
    validator = Draft202012Validator({"$ref": f"{URI}#{pointer}"}, registry=_registry())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(instance)
    ]


def schema_errors(instance: Any, component: str) -> list[str]:
    return validate_at(instance, f"/components/schemas/{_escape(component)}")


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    operation_id: str
    pointer: str
    node: dict[str, Any]


@cache
def _operations() -> list[tuple[re.Pattern[str], Operation]]:
    found = []
    for template, item in spec()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, node in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            pointer = f"/paths/{_escape(template)}/{method}"
            found.append(
                (pattern, Operation(template, method.upper(), node["operationId"], pointer, node))
            )
    # Literal segments win over parameters: /runners/downloads before /runners/{runner_id}.
    found.sort(key=lambda pair: pair[1].template.count("{"))
    return found


def operation_for(method: str, path: str) -> Operation | None:
    for pattern, op in _operations():
        if op.method == method and pattern.match(path):
            return op
    return None


def _deref(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    # Response and request-body objects may be $refs to components; schemas are left to
    # jsonschema, which resolves them inside the registered document.
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = spec()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


@dataclass
class Exchange:
    method: str
    path: str
    request_body: Any
    status: int
    response_body: Any
    operation_id: str | None = None


def check_exchange(exchange: Exchange) -> list[str]:
    op = operation_for(exchange.method, exchange.path)
    where = f"{exchange.method} {exchange.path} -> {exchange.status}"
    if op is None:
        return [f"{where}: not an operation of the GitHub REST description"]
    exchange.operation_id = op.operation_id
    problems: list[str] = []
    if "requestBody" in op.node:
        body, pointer = _deref(op.node["requestBody"], op.pointer + "/requestBody")
        if exchange.request_body is None and body.get("required"):
            problems.append(f"{where}: request body required")
        elif exchange.request_body is not None:
            schema_ptr = pointer + "/content/application~1json/schema"
            problems += [
                f"{where} request: {e}" for e in validate_at(exchange.request_body, schema_ptr)
            ]
    elif exchange.request_body is not None:
        problems.append(f"{where}: sends a body to an operation that takes none")
    responses = op.node["responses"]
    declared = responses.get(str(exchange.status))
    if declared is None:
        if 200 <= exchange.status < 300:
            problems.append(f"{where}: status not declared by the description")
        return problems  # faults (401, 429, 500...) GitHub does not document per route
    response, pointer = _deref(declared, f"{op.pointer}/responses/{exchange.status}")
    if "content" in response and "application/json" in response["content"]:
        schema_ptr = pointer + "/content/application~1json/schema"
        problems += [
            f"{where} response: {e}" for e in validate_at(exchange.response_body, schema_ptr)
        ]
    elif exchange.response_body not in (None, b"", ""):
        problems.append(f"{where}: body where the description declares none")
    return problems


@dataclass
class ContractRecorder(httpx.AsyncBaseTransport):
    """Wraps a transport; records every exchange so it can be checked against the spec."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                request_body=json.loads(content) if content else None,
                status=response.status_code,
                response_body=json.loads(body) if body else None,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def violations(self) -> list[str]:
        return [problem for exchange in self.exchanges for problem in check_exchange(exchange)]

    def covered(self) -> set[str]:
        self.violations()  # fills operation_id
        return {e.operation_id for e in self.exchanges if e.operation_id}
