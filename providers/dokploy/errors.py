"""Typed Dokploy errors, built from tRPC error bodies.

Exceptions carry the procedure, the HTTP status and Dokploy's own message, never a request
body, a header or an env value: an exception may end up in a plan, an audit record or a log.
The transient ones carry the shared core's `TransientFailure` facts (providers/http_core.py),
which is what its retry rule reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.http_core import TransientFailure, is_server_error, parse_retry_after

# Dokploy's messages are short; a proxy's HTML error page is not, so cap what we keep.
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class ValidationIssue:
    """One zod issue: where (the input path) and what was wrong."""

    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "<input>"
        return f"{where}: {self.message}"


class DokployError(Exception):
    """Base for every failure talking to Dokploy."""

    def __init__(
        self,
        message: str,
        *,
        procedure: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message[:_MAX_MESSAGE]
        self.procedure = procedure
        self.http_status = http_status
        self.code = code
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.procedure}: " if self.procedure else ""
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        return f"{where}{self.message}{status}"


class DokployUnauthorized(DokployError):
    """The API key is missing, wrong, revoked or rate-exhausted (Dokploy answers 401)."""


class DokployAccessDenied(DokployError):
    """The key is good but its member may not do this (Dokploy answers 401 with a tRPC body:
    "Permission denied", "You don't have access to this service", "You need to use a server
    to create an application", ...). It concerns one object or call, never the whole key:
    the preflight passed, and other lanes go on."""


class DokployAddressError(DokployError):
    """SETPOINT_DOKPLOY_URL cannot be used (no scheme, say): configuration, never retried."""


class DokployForbidden(DokployError):
    """The key is valid but its member lacks the permission for this call."""


class DokployNotFound(DokployError):
    """The object does not exist (or the route/method does not)."""


class DokployConflict(DokployError):
    """Dokploy refused a duplicate, e.g. an `appName` already in use."""


class DokployValidationError(DokployError):
    """Dokploy rejected the input; `issues` are zod issues (path and message only)."""

    def __init__(self, message: str, *, issues: list[ValidationIssue], **kw: Any) -> None:
        self.issues = issues
        super().__init__(message, **kw)

    def __str__(self) -> str:
        base = super().__str__()
        if not self.issues:
            return base
        return base + ": " + "; ".join(str(i) for i in self.issues)


class DokployRateLimited(DokployError, TransientFailure):
    """HTTP 429; `retry_after` is the server's hint in seconds, when it gave one.

    Dokploy refused without acting, so any call, even a create, may be sent again.
    """

    request_sent = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class DokployTransientError(DokployError, TransientFailure):
    """5xx or a connection failure: worth retrying when the call is safe to repeat."""


class DokployConnectError(DokployTransientError):
    """The connection could not be made, so the request never reached Dokploy."""

    request_sent = False


class DokployTimeout(DokployTransientError):
    """No answer within the call's timeout; a mutation may or may not have happened."""


class DokployAnswerLost(DokployError):
    """Dokploy said the call succeeded but sent nothing readable back: the work may well
    be done (a create made its object), so it is looked up, never assumed not to be."""


class DeployTimeout(DokployError):
    """A deployment's build did not reach a terminal status in time (counted from when its
    build started, not from when it was asked for)."""


class DeployQueued(DokployError):
    """A deploy was asked for but its build has not started: Dokploy builds one deployment
    at a time per server, and this one still waits its turn (or never reached the queue).
    Not a timeout: nothing has failed, and asking again would build it twice."""


_BY_STATUS: dict[int, type[DokployError]] = {
    401: DokployUnauthorized,
    403: DokployForbidden,
    404: DokployNotFound,
    409: DokployConflict,
}


def _issues_from(body: Mapping[str, Any]) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    raw = body.get("issues")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                path = item.get("path")
                parts = tuple(p for p in path if isinstance(p, str | int)) if path else ()
                issues.append(ValidationIssue(parts, str(item.get("message", "invalid"))))
    if issues:
        return issues
    # Without `issues`, fall back to tRPC's flattened zod error from the error formatter.
    data = body.get("data")
    zod = data.get("zodError") if isinstance(data, Mapping) else None
    if isinstance(zod, Mapping):
        fields = zod.get("fieldErrors")
        if isinstance(fields, Mapping):
            for field, messages in fields.items():
                for m in messages if isinstance(messages, list) else [messages]:
                    issues.append(ValidationIssue((str(field),), str(m)))
        form = zod.get("formErrors")
        if isinstance(form, list):
            issues.extend(ValidationIssue((), str(m)) for m in form)
    return issues


def error_from_response(
    procedure: str,
    status: int,
    body: Any,
    retry_after_header: str | None = None,
) -> DokployError:
    """Map an HTTP error status and its (already decoded) body to a typed exception."""
    message = "no message"
    code: str | None = None
    if isinstance(body, Mapping):
        message = str(body.get("message") or message)
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) else None
    kw: dict[str, Any] = {"procedure": procedure, "http_status": status, "code": code}
    if status == 400 or code == "BAD_REQUEST":
        issues = _issues_from(body) if isinstance(body, Mapping) else []
        return DokployValidationError(message, issues=issues, **kw)
    if status == 401 and code is not None:
        # A bad key gets a bare {"message":"Unauthorized"}; a permission check throws a tRPC
        # error, whose body carries its code (UNAUTHORIZED) and its own message.
        return DokployAccessDenied(message, **kw)
    if status == 429:
        return DokployRateLimited(message, retry_after=parse_retry_after(retry_after_header), **kw)
    if is_server_error(status):
        return DokployTransientError(message, **kw)
    return _BY_STATUS.get(status, DokployError)(message, **kw)
