"""GitHub's `Link` header pagination (RFC 8288): follow rel="next" until it is gone."""

from __future__ import annotations

import re

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",]+)"?')

# A runaway `next` chain (a bug, or a list growing while we read) must not loop forever.
MAX_PAGES = 100
PER_PAGE = 100


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each rel to its URL: `<u1>; rel="next", <u2>; rel="last"` -> {next: u1, last: u2}."""
    if not value:
        return {}
    links: dict[str, str] = {}
    for url, rels in _LINK.findall(value):
        for rel in rels.split():
            links.setdefault(rel, url)
    return links


def next_link(value: str | None) -> str | None:
    return parse_link_header(value).get("next")
