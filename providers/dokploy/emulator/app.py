"""The emulator's HTTP surface: Dokploy's `/api/<router>.<procedure>` plus test controls.

Request handling mirrors Dokploy v0.30 (trpc-to-openapi behind an API-key check): auth
first (401 `{"message":"Unauthorized"}`), then route and method (404 when either is
wrong), content type for writes (415), input validation (400 with zod issues), then
the procedure. Injected faults sit between validation and the procedure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from providers.dokploy.emulator.faults import Decision, FaultController
from providers.dokploy.emulator.inputs import Input
from providers.dokploy.emulator.procedures import PROCEDURES, Procedure
from providers.dokploy.emulator.runners import RunnerLinkLike
from providers.dokploy.emulator.state import EmulatorState
from providers.dokploy.emulator.trpc import CODE_FOR_STATUS, TrpcError, zod_issues

log = logging.getLogger("providers.dokploy.emulator")


class Emulator:
    """State and faults of one emulator instance; `app.state.emulator` in the ASGI app."""

    def __init__(
        self, *, api_key: str, seed: int, build_seconds: float, parallel_builds: bool = False
    ) -> None:
        self._api_key = api_key.encode()
        self.seed = seed
        self.build_seconds = build_seconds
        self.parallel_builds = parallel_builds
        self.faults = FaultController(seed=seed)
        self.state = self._new_state()

    def _new_state(self) -> EmulatorState:
        return EmulatorState(
            seed=self.seed,
            build_seconds=self.build_seconds,
            faults=self.faults,
            parallel_builds=self.parallel_builds,
        )

    def __repr__(self) -> str:
        return f"Emulator(seed={self.seed})"

    def key_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._api_key)

    def reset(self) -> None:
        self.faults.reset()
        link = self.state.runner_link
        self.state = self._new_state()
        self.state.runner_link = link

    def link_runners(self, link: RunnerLinkLike) -> None:
        """Runner applications (env with a runner registration) come online in the GitHub
        emulator `link` belongs to when deployed or started, offline when stopped."""
        self.state.runner_link = link

    def add_server(self, name: str, ip_address: str = "192.0.2.10") -> dict[str, Any]:
        row: dict[str, Any] = {
            "serverId": self.state.new_id(),
            "name": name,
            "description": None,
            "ipAddress": ip_address,
            "port": 22,
            "username": "root",
            "appName": self.state.app_name(name.lower().replace(" ", "-"), "server"),
            "serverStatus": "active",
            "serverType": "deploy",
            "createdAt": self.state.iso(),
            "organizationId": self.state.organization_id,
            "sshKeyId": None,
        }
        self.state.servers[row["serverId"]] = row
        return row

    def summary(self) -> dict[str, Any]:
        """Test-facing view of state; env text appears only as key names and a hash."""
        s = self.state
        s.tick()

        def env_info(text: str | None) -> dict[str, Any]:
            keys = [ln.split("=", 1)[0] for ln in (text or "").splitlines() if "=" in ln]
            digest = hashlib.sha256((text or "").encode()).hexdigest()[:16]
            return {"keys": keys, "sha256": digest}

        services = {**s.applications, **s.composes}
        return {
            "projects": len(s.projects),
            "environments": len(s.environments),
            "applications": sorted(a["name"] for a in s.applications.values()),
            "compose": sorted(c["name"] for c in s.composes.values()),
            "domains": len(s.domains),
            "live": {
                sid: {
                    "name": services[sid]["name"] if sid in services else None,
                    "env": env_info(live.env),
                    "dockerImage": live.docker_image,
                    "replicas": live.replicas,
                    "routes": sorted(r["host"] for r in live.routes),
                }
                for sid, live in s.live.items()
            },
            "faults": self.faults.snapshot(),
        }


def _error(exc: TrpcError, procedure: str | None) -> JSONResponse:
    return JSONResponse(exc.body(procedure), status_code=exc.status, headers=exc.headers)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"message": "Unauthorized"}, status_code=401)


async def _read_input(request: Request, method: str) -> Any:
    if method == "GET":
        return dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        # Sic: Dokploy's message has no closing quote.
        raise TrpcError("UNSUPPORTED_MEDIA_TYPE", f'Unsupported content-type "{ctype}')
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise TrpcError("PARSE_ERROR", "Failed to parse request body") from None


async def api(request: Request) -> Response:
    """One procedure call, checked in Dokploy's order (see the module docstring)."""
    emulator: Emulator = request.app.state.emulator
    procedure = request.path_params["procedure"]
    refused = _refused_at_the_door(emulator, request, procedure)
    if refused is not None:
        return refused
    spec = PROCEDURES.get(procedure)
    if spec is None or spec.method != request.method:
        return _error(TrpcError("NOT_FOUND", "Not found"), None)
    try:
        args = await _validated_input(request, spec)
        _check_access(emulator, procedure, args)
        decision = emulator.faults.decide(procedure)
        result = await _run_with_faults(emulator, spec, args, decision)
    except TrpcError as exc:
        return _error(exc, procedure)
    return _answer(result, decision)


def _refused_at_the_door(emulator: Emulator, request: Request, procedure: str) -> Response | None:
    # Dokploy checks the key before the route, so a bad key gets 401 even for a procedure
    # that does not exist. The injected 429 sits here too, so it can answer any call.
    if not emulator.key_ok(request.headers.get("x-api-key")) or emulator.faults.force_unauthorized:
        return _unauthorized()
    if emulator.faults.take_rate_limit():
        seconds = emulator.faults.retry_after_seconds
        exc = TrpcError(
            "TOO_MANY_REQUESTS", "Too many requests", headers={"retry-after": f"{seconds:g}"}
        )
        return _error(exc, procedure)
    return None


async def _validated_input(request: Request, spec: Procedure) -> Input:
    raw = await _read_input(request, spec.method)
    if not isinstance(raw, dict):
        raw = {}
    try:
        return spec.input.model_validate(raw)
    except ValidationError as exc:
        issues = zod_issues(spec.input, exc)
        raise TrpcError("BAD_REQUEST", "Input validation failed", issues=issues) from None


def _check_access(emulator: Emulator, procedure: str, args: Input) -> None:
    """Dokploy's permission checks: after validation, before the procedure acts."""
    if not emulator.faults.denials:
        return
    named = {str(v) for k, v in args if k in ("applicationId", "composeId") and v}
    domain = emulator.state.domains.get(str(getattr(args, "domainId", "")))
    if domain is not None:
        named |= {v for v in (domain.get("applicationId"), domain.get("composeId")) if v}
    message = emulator.faults.denial(procedure, named)
    if message is not None:
        raise TrpcError("UNAUTHORIZED", message)


async def _run_with_faults(
    emulator: Emulator, spec: Procedure, args: Input, decision: Decision
) -> Any:
    if decision.latency:
        await anyio.sleep(decision.latency)
    if decision.hang_seconds and decision.hang_when == "before":
        await anyio.sleep(decision.hang_seconds)
        raise TrpcError("GATEWAY_TIMEOUT", "Gateway timeout (injected)")
    if decision.fail_status == 401:  # as for a revoked key (access_denied is its own fault)
        raise TrpcError("UNAUTHORIZED", "Unauthorized", bare=True)
    if decision.fail_status is not None:
        code = CODE_FOR_STATUS.get(decision.fail_status, "INTERNAL_SERVER_ERROR")
        headers = {}
        if decision.fail_status == 429:
            headers["retry-after"] = f"{emulator.faults.retry_after_seconds:g}"
        raise TrpcError(code, f"Injected failure ({decision.fail_status})", headers=headers)
    emulator.state.tick()
    result = spec.handler(emulator.state, args)
    if decision.hang_seconds:
        # The work is done; only the answer is lost, as when a proxy times out.
        await anyio.sleep(decision.hang_seconds)
    return result


def _answer(result: Any, decision: Decision) -> Response:
    if decision.empty_list and isinstance(result, list):
        result = []
    if result is None or decision.empty_body:
        return Response(b"", status_code=200, media_type="application/json")
    if decision.truncated_body:
        whole = JSONResponse(result).body
        return Response(whole[: len(whole) // 2], status_code=200, media_type="application/json")
    return JSONResponse(result)


async def control_faults(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if not emulator.key_ok(request.headers.get("x-api-key")):
        return _unauthorized()
    try:
        spec = await request.json()
        if not isinstance(spec, dict):
            raise ValueError("body must be a JSON object")
        emulator.faults.apply(spec)
    except ValueError as exc:
        return JSONResponse({"message": str(exc)}, status_code=400)
    return JSONResponse(emulator.faults.snapshot())


async def control_reset(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if not emulator.key_ok(request.headers.get("x-api-key")):
        return _unauthorized()
    emulator.reset()
    return JSONResponse({"reset": True})


async def control_state(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if not emulator.key_ok(request.headers.get("x-api-key")):
        return _unauthorized()
    return JSONResponse(emulator.summary())


async def control_advance(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if not emulator.key_ok(request.headers.get("x-api-key")):
        return _unauthorized()
    body = await request.json()
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or seconds < 0:
        return JSONResponse({"message": "seconds must be a non-negative number"}, status_code=400)
    emulator.state.advance(float(seconds))
    return JSONResponse({"advanced": seconds})


async def control_servers(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    if not emulator.key_ok(request.headers.get("x-api-key")):
        return _unauthorized()
    body = await request.json()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        return JSONResponse({"message": "name is required"}, status_code=400)
    return JSONResponse(emulator.add_server(name))


async def routed_domain(request: Request) -> Response:
    """What Traefik would pass on to a deployed service: 200 from any path of a domain the
    emulator routes to a running service, else 404 as Traefik answers an unknown host.
    Lets `SETPOINT_HEALTH_ROUTE_VIA` point health checks here."""
    emulator: Emulator = request.app.state.emulator
    host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
    if emulator.state.serves(host):
        failing = emulator.faults.unhealthy_status(host)
        if failing is not None:
            return PlainTextResponse(f"unhealthy: {host}", status_code=failing)
        return PlainTextResponse(f"ok from {host}", headers=_identity_headers(emulator, host))
    return PlainTextResponse("404 page not found", status_code=404)


# The service's env values its nginx echoes back (`add_header X-Setpoint-Generation
# $SETPOINT_GENERATION`, ...): what a health check with `expectIdentity` reads.
_ECHOED_ENV = {
    "SETPOINT_GENERATION": "X-Setpoint-Generation",
    "SETPOINT_IMAGE_DIGEST": "X-Setpoint-Image-Digest",
}


def _identity_headers(emulator: Emulator, host: str) -> dict[str, str]:
    env = emulator.state.env_behind(host)
    return {header: env[key] for key, header in _ECHOED_ENV.items() if key in env}


def create_app(
    api_key: str,
    seed: int = 0,
    build_seconds: float = 0.2,
    latency: float = 0.0,
    *,
    parallel_builds: bool = False,
) -> Starlette:
    """An ASGI app that behaves like Dokploy v0.30 for the procedures Setpoint uses, and
    answers requests for the domains it routes as the deployed services would.

    Builds queue one at a time per Dokploy server, as the real one's do; `parallel_builds`
    builds every service's deployment at once instead (the emulator's behaviour before)."""
    if not api_key:
        raise ValueError("the emulator needs a non-empty api key")
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/api/{procedure}", api, methods=methods),
            Route("/__emulator/faults", control_faults, methods=["POST"]),
            Route("/__emulator/reset", control_reset, methods=["POST"]),
            Route("/__emulator/state", control_state, methods=["GET"]),
            Route("/__emulator/advance", control_advance, methods=["POST"]),
            Route("/__emulator/servers", control_servers, methods=["POST"]),
            Route("/{path:path}", routed_domain, methods=["GET", "HEAD"]),
        ]
    )
    app.state.emulator = Emulator(
        api_key=api_key, seed=seed, build_seconds=build_seconds, parallel_builds=parallel_builds
    )
    if latency:
        app.state.emulator.faults.latency(latency)
    return app
