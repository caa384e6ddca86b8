"""The plan review pages: the fleet, its plans and its history in a browser, and apply with
an operator's token. Server-rendered (Jinja2), a few lines of JavaScript in a static file.

`mount_review_pages` adds them to the API's app; `create_review_app` serves them alone.
"""

from reconciler.web.review_app import create_review_app, mount_review_pages, review_router
from reconciler.web.site import PageAccess, ReviewSite, review_site, shared_runtime

__all__ = [
    "PageAccess",
    "ReviewSite",
    "create_review_app",
    "mount_review_pages",
    "review_router",
    "review_site",
    "shared_runtime",
]
