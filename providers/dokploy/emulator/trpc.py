"""tRPC error bodies as Dokploy (trpc-to-openapi) sends them, and zod-style issues."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

HTTP_STATUS = {
    "PARSE_ERROR": 400,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "TOO_MANY_REQUESTS": 429,
    "INTERNAL_SERVER_ERROR": 500,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
    "GATEWAY_TIMEOUT": 504,
}
CODE_FOR_STATUS = {v: k for k, v in HTTP_STATUS.items() if k != "PARSE_ERROR"}


class TrpcError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        bare: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.issues = issues
        self.headers = headers or {}
        # Dokploy's API-key check answers `{"message": ...}` alone, outside tRPC.
        self.bare = bare

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self, procedure: str | None) -> dict[str, Any]:
        if self.bare:
            return {"message": self.message}
        zod: dict[str, Any] | None = None
        if self.issues is not None:
            fields: dict[str, list[str]] = {}
            form: list[str] = []
            for issue in self.issues:
                if issue["path"]:
                    fields.setdefault(str(issue["path"][0]), []).append(issue["message"])
                else:
                    form.append(issue["message"])
            zod = {"formErrors": form, "fieldErrors": fields}
        data: dict[str, Any] = {"code": self.code, "httpStatus": self.status}
        if procedure is not None:  # an unknown route names no procedure
            data["path"] = procedure
        data["zodError"] = zod
        out: dict[str, Any] = {"message": self.message, "code": self.code, "data": data}
        if self.issues is not None:
            out["issues"] = self.issues
        return out


def _js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _expected(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    prop = model.model_json_schema(by_alias=True).get("properties", {}).get(str(loc[0]), {})
    types = [prop.get("type")] + [o.get("type") for o in prop.get("anyOf", [])]
    named = [t for t in types if t and t != "null"]
    return {"integer": "number"}.get(named[0], named[0]) if named else "string"


def _nonoptional(model: type[BaseModel], loc: tuple[Any, ...]) -> bool:
    """Whether zod calls the field `nonoptional`: an optional field a schema made required
    (`.required()`), which is every required field that may be null, and those marked so."""
    prop = model.model_json_schema(by_alias=True).get("properties", {}).get(str(loc[0]), {})
    info = model.model_fields.get(str(loc[0]))
    extra = info.json_schema_extra if info is not None else None
    marked = isinstance(extra, dict) and extra.get("zodNonoptional") is True
    return marked or any(o.get("type") == "null" for o in prop.get("anyOf", []))


def _own_message(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """A schema's own message for a field (Dokploy's `z.string().min(1, "Add a hostname")`)."""
    info = model.model_fields.get(str(loc[0]))
    extra = info.json_schema_extra if info is not None else None
    said = extra.get("zodMessage") if isinstance(extra, dict) else None
    return said if isinstance(said, str) else None


Issue = dict[str, Any]


def _missing(model: type[BaseModel], path: list[Any], loc: tuple[Any, ...], _: Any) -> Issue:
    # zod v4: a required key that may be null is `nonoptional`, and its issue lists `code` first.
    if _nonoptional(model, loc):
        msg = "Invalid input: expected nonoptional, received undefined"
        return {"code": "invalid_type", "expected": "nonoptional", "path": path, "message": msg}
    expected = _expected(model, loc)
    msg = f"Invalid input: expected {expected}, received undefined"
    return {"expected": expected, "code": "invalid_type", "path": path, "message": msg}


def _wrong_type(model: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    expected, received = _expected(model, loc), _js_type(err.get("input"))
    msg = f"Invalid input: expected {expected}, received {received}"
    return {"expected": expected, "code": "invalid_type", "path": path, "message": msg}


def _bound(origin: str, code: str, limit: Any, path: list[Any], message: str) -> Issue:
    key = "minimum" if code == "too_small" else "maximum"
    return {
        "origin": origin,
        "code": code,
        key: limit,
        "inclusive": True,
        "path": path,
        "message": message,
    }


def _too_short(model: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    n = err.get("ctx", {}).get("min_length", 1)
    msg = _own_message(model, loc) or f"Too small: expected string to have >={n} characters"
    return _bound("string", "too_small", n, path, msg)


def _too_long(model: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    n = err.get("ctx", {}).get("max_length")
    msg = _own_message(model, loc) or f"Too big: expected string to have <={n} characters"
    return _bound("string", "too_big", n, path, msg)


def _pattern(model: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    pattern = err.get("ctx", {}).get("pattern", "")
    msg = _own_message(model, loc) or f"Invalid string: must match pattern /{pattern}/"
    return {
        "origin": "string",
        "code": "invalid_format",
        "format": "regex",
        "pattern": f"/{pattern}/",
        "path": path,
        "message": msg,
    }


def _enum(_: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    expected = str(err.get("ctx", {}).get("expected", ""))
    values = [v.strip().strip("'") for v in expected.replace(" or ", ",").split(",") if v.strip()]
    listed = "|".join(f'"{v}"' for v in values)
    return {
        "code": "invalid_value",
        "values": values,
        "path": path,
        "message": f"Invalid option: expected one of {listed}",
    }


def _number_bound(_: type[BaseModel], path: list[Any], loc: tuple[Any, ...], err: Any) -> Issue:
    ctx = err.get("ctx", {})
    if "ge" in ctx:
        return _bound(
            "number",
            "too_small",
            ctx["ge"],
            path,
            f"Too small: expected number to be >={ctx['ge']}",
        )
    return _bound(
        "number",
        "too_big",
        ctx.get("le"),
        path,
        f"Too big: expected number to be <={ctx.get('le')}",
    )


_ISSUE_FOR = {
    "missing": _missing,
    "string_too_short": _too_short,
    "string_too_long": _too_long,
    "string_pattern_mismatch": _pattern,
    "literal_error": _enum,
    "enum": _enum,
    "greater_than_equal": _number_bound,
    "less_than_equal": _number_bound,
}


def zod_issues(model: type[BaseModel], exc: ValidationError) -> list[dict[str, Any]]:
    """Translate pydantic errors into the zod v4 issues Dokploy v0.30 returns (shapes and
    messages as recorded from a real server, tests/contracts/dokploy-real-v0.30.2/)."""
    issues: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        make = _ISSUE_FOR.get(kind)
        if make is None and (kind.endswith("_type") or kind == "model_type"):
            make = _wrong_type
        if make is None:
            issues.append({"code": "custom", "path": list(loc), "message": err["msg"]})
        else:
            issues.append(make(model, list(loc), loc, err))
    return issues
