"""`setpoint previews list` and the previews page: every anchor, read from the records alone.

One row per pull request that has, waits for, or had a preview: its PR, head, the commit its
preview runs (as its last deploy recorded it), its lane, state and the address it answers at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from providers.github.config import PUBLIC_WEB_URL
from reconciler.core.inventory import OwnershipSnapshot
from reconciler.fleet import DesiredFleet
from reconciler.kinds.base import KindListing
from reconciler.kinds.preview.feedback import preview_url
from reconciler.kinds.preview.lanes import KIND, preview_set, running_shas


def preview_rows(
    fleet: DesiredFleet, owned: OwnershipSnapshot, now: datetime
) -> list[dict[str, Any]]:
    previews = preview_set(fleet, now.timestamp(), running_shas(owned))
    return [
        {
            "product": view.product,
            "pullRequest": view.spec.number,
            "repository": view.spec.repository,
            "pullRequestUrl": f"{PUBLIC_WEB_URL}/{quote(view.spec.repository)}/pull/{view.spec.number}",
            "headSha": view.spec.head_sha,
            # What its service runs, as its last deploy recorded it (None: nothing yet).
            "runningSha": view.running_sha,
            "lane": view.lane,
            "state": view.state.value,
            "detail": view.detail,
            "source": view.spec.source,
            "url": preview_url(previews.lanes.get(view.lane)),  # None: no domain
        }
        for view in previews.anchors
    ]


PREVIEW_LISTING = KindListing(kind=KIND, plural="previews", from_records=preview_rows)
