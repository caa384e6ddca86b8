"""Where the adapters are put together: the one module that imports more than one of them.

The adapters (`cli/`, `api/`, `web/`, `demo/`) never import each other
(tests/test_architecture.py). A command that starts another adapter asks this module:

- `create_service(runtime)`: the HTTP API with the plan review pages mounted beside it (unless
  SETPOINT_REVIEW_PAGES=off), every answer carrying the security headers. `setpoint serve`,
  the demo's workflow and the API's tests serve it.
- `create_review_app(site)`, `ReviewSite`, `PageAccess`: the pages alone (the demo).
- `run_service`, `Companion`: uvicorn with tasks beside it (`setpoint serve`).
- `run_demo`: `setpoint demo` (imported when called: the demo itself starts the service
  through this module).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI

from providers.github.oidc import OidcVerifier
from reconciler.api import create_api
from reconciler.api.server import Companion, run_service
from reconciler.runtime import Runtime
from reconciler.web import (
    PageAccess,
    ReviewSite,
    create_review_app,
    mount_review_pages,
    review_site,
    shared_runtime,
)
from reconciler.web.guard import SecurityHeaders

if TYPE_CHECKING:
    from rich.console import Console

    from reconciler.demo.run import DemoOutcome

__all__ = [
    "Companion",
    "PageAccess",
    "ReviewSite",
    "create_review_app",
    "create_service",
    "run_demo",
    "run_service",
]


def create_service(runtime: Runtime, *, verifier: OidcVerifier | None = None) -> FastAPI:
    """The API on `runtime` and the review pages, applying on the same runtime.
    `verifier`: tests and the demo bring one wired to the GitHub emulator."""
    app = create_api(runtime, verifier=verifier)
    mount_review_pages(
        app, review_site(runtime.database, shared_runtime(runtime), runtime.settings)
    )
    app.add_middleware(SecurityHeaders)  # outermost: every answer, the pages' and the API's
    return app


async def run_demo(
    console: Console, *, keep_serving: Callable[[str], Awaitable[None]] | None = None
) -> DemoOutcome:
    """`setpoint demo` (`reconciler.demo.run.run_demo` on the example fleet)."""
    from reconciler.demo.run import run_demo as demo

    return await demo(console, keep_serving=keep_serving)
