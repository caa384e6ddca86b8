"""Mount the review pages on an app (the API's, in `setpoint serve`), or make an app of them.

    mount_review_pages(app, review_site(engine, open_runtime, settings))

With `review_pages=off` nothing is mounted. With `token`, every page but sign-in needs an
operator to have signed in; with `open`, reading is free and applying still needs a token.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from reconciler.records.database import in_thread
from reconciler.web.applying import ApplyPages, RunningApplies
from reconciler.web.guard import SecuredRoute, SecurityHeaders
from reconciler.web.operators import signed_in_operator
from reconciler.web.pages import ReadPages
from reconciler.web.rolling_back import RollbackPages
from reconciler.web.site import PageAccess, ReviewSite
from reconciler.web.templating import STATIC, Pages


class _SignInNeeded(Exception):
    """Not an error: the reader is sent to sign in."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def review_router(site: ReviewSite, prefix: str = "") -> APIRouter:
    """Every page, as one router whose responses carry the security headers."""
    pages = Pages(prefix, sign_in_used=site.access is PageAccess.token)

    async def reader(request: Request) -> None:
        if site.access is PageAccess.open:
            return
        if await in_thread(signed_in_operator, site, request) is None:
            raise _SignInNeeded(request.url.path)

    router = APIRouter(prefix=prefix, route_class=SecuredRoute)
    running = RunningApplies()  # the plan page follows what the apply pages started
    ReadPages(site, pages, running).add_routes(router, reader)
    ApplyPages(site, pages, running).add_routes(router, reader)
    RollbackPages(site, pages).add_routes(router, reader)
    return router


def mount_review_pages(app: FastAPI, site: ReviewSite, *, prefix: str = "") -> bool:
    """Add the pages and their static files to `app`; False when the pages are off."""
    if site.access is PageAccess.off:
        return False
    app.include_router(review_router(site, prefix))
    app.mount(f"{prefix}/static", StaticFiles(directory=STATIC), name="review-static")

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _SignInNeeded)
        return RedirectResponse(f"{prefix}/sign-in?next={quote(exc.path)}", status_code=303)

    app.add_exception_handler(_SignInNeeded, to_sign_in)
    return True


def create_review_app(site: ReviewSite) -> FastAPI:
    """The pages alone, for tests and `setpoint demo --serve` (no API docs, no schema)."""
    app = FastAPI(title="Setpoint review", docs_url=None, redoc_url=None, openapi_url=None)
    mount_review_pages(app, site)
    app.add_middleware(SecurityHeaders)
    return app
