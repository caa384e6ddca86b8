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
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.issues = issues
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self, procedure: str | None) -> dict[str, Any]:
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
        out: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "data": {
                "code": self.code,
                "httpStatus": self.status,
                "path": procedure,
                "zodError": zod,
            },
        }
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


def zod_issues(model: type[BaseModel], exc: ValidationError) -> list[dict[str, Any]]:
    """Translate pydantic errors into the zod issue shapes Dokploy returns."""
    issues: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = list(loc)
        kind = err["type"]
        ctx = err.get("ctx", {})
        if kind == "missing":
            expected = _expected(model, loc)
            issues.append(
                {
                    "code": "invalid_type",
                    "expected": expected,
                    "received": "undefined",
                    "path": path,
                    "message": "Required",
                }
            )
        elif kind.endswith("_type") or kind == "model_type":
            expected, received = _expected(model, loc), _js_type(err.get("input"))
            issues.append(
                {
                    "code": "invalid_type",
                    "expected": expected,
                    "received": received,
                    "path": path,
                    "message": f"Expected {expected}, received {received}",
                }
            )
        elif kind == "string_too_short":
            n = ctx.get("min_length", 1)
            msg = f"String must contain at least {n} character(s)"
            issues.append(
                {"code": "too_small", "minimum": n, "type": "string", "path": path, "message": msg}
            )
        elif kind == "string_too_long":
            n = ctx.get("max_length")
            msg = f"String must contain at most {n} character(s)"
            issues.append(
                {"code": "too_big", "maximum": n, "type": "string", "path": path, "message": msg}
            )
        elif kind == "string_pattern_mismatch":
            issues.append(
                {
                    "code": "invalid_string",
                    "validation": "regex",
                    "path": path,
                    "message": "Invalid",
                }
            )
        elif kind in ("literal_error", "enum"):
            expected = ctx.get("expected", "")
            issues.append(
                {
                    "code": "invalid_enum_value",
                    "path": path,
                    "message": f"Invalid enum value. Expected {expected}",
                }
            )
        elif kind in ("greater_than_equal", "less_than_equal"):
            bound = ctx.get("ge", ctx.get("le"))
            word = "greater" if kind.startswith("greater") else "less"
            code = "too_small" if word == "greater" else "too_big"
            msg = f"Number must be {word} than or equal to {bound}"
            issues.append({"code": code, "type": "number", "path": path, "message": msg})
        else:
            issues.append({"code": "custom", "path": path, "message": err["msg"]})
    return issues
