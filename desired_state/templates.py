"""Preview templates such as `pr-{number}`: only known placeholders, rendered one way."""

from __future__ import annotations

import string
from collections.abc import Mapping

SLUG_PLACEHOLDERS = frozenset({"number", "product"})
DOMAIN_PLACEHOLDERS = frozenset({"number", "product", "slug"})
IMAGE_PLACEHOLDERS = frozenset({"number", "product", "slug", "sha", "sha7"})


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses; raises ValueError on malformed braces."""
    names: set[str] = set()
    for _literal, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if field == "" or spec or conversion:
            raise ValueError(f"placeholder {{{field}}} must be a bare name like {{number}}")
        names.add(field)
    return names


def check_template(template: str, allowed: frozenset[str]) -> str:
    unknown = placeholders(template) - allowed
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join(sorted('{' + n + '}' for n in unknown))}; "
            f"allowed: {', '.join(sorted('{' + n + '}' for n in allowed))}"
        )
    return template


def render(template: str, values: Mapping[str, str | int]) -> str:
    return template.format_map(dict(values))
