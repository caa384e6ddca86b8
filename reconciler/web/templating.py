"""The pages' Jinja2 environment: autoescaped, and every value shown passes `redact`.

Plans, audit records and statuses never hold secret values (Invariant 7); the redaction
here is the second wall, the same one the logs have: a value this process resolved as a
secret is shown as *** wherever it might turn up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from reconciler.presentation.words import RISK_STYLE, risk_summary, value_text
from reconciler.secret_values import redact
from reconciler.web.guard import SESSION_COOKIE
from reconciler.web.readouts import audit_summary, lane_path

SIGN_IN_PAGE = "sign_in.html"
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _redacted_output(value: Any) -> Any:
    """Jinja's finalize: runs on every `{{ ... }}` before it is escaped and written."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        # Markup our own templates made; redact only swaps a known secret for ***.
        return Markup(redact(str(value)))  # noqa: S704
    return redact(value if isinstance(value, str) else str(value))


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "diff-file"
    return {"+": "diff-add", "-": "diff-del", "@": "diff-hunk"}.get(line[:1], "")


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        finalize=_redacted_output,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        value_text=value_text,
        diff_class=_diff_class,
        pretty=_pretty,
        lane_path=lane_path,
        audit_summary=audit_summary,
    )
    env.globals.update(risks=list(RISK_STYLE), risk_summary=risk_summary)
    return env


class Pages:
    """Renders one template into a response, with what every page needs."""

    def __init__(self, prefix: str, *, sign_in_used: bool) -> None:
        self.env = environment()
        self.prefix = prefix
        self.sign_in_used = sign_in_used  # reading needs a token: offer to sign out

    def respond(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        template = self.env.get_template(name)
        body = template.render(
            base=self.prefix,
            static=f"{self.prefix}/static",
            path=request.url.path,
            signed_in=self.signed_in(request, name),
            **context,
        )
        return HTMLResponse(body, status_code=status_code)

    def signed_in(self, request: Request, name: str) -> bool:
        """Offer to sign out only to a reader who holds a session, never on the sign-in page."""
        return self.sign_in_used and name != SIGN_IN_PAGE and SESSION_COOKIE in request.cookies
