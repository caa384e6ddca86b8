"""Checks of a whole Product that no single field can make: each returns (field path, message).

They run after the spec itself validated, so every lane is already well formed. The paths use
the names written in YAML, so the loader can point at the line of the field concerned. No
message ever carries a value from `env` or a compose file: only key names and image names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from desired_state.names import has_digest, is_image_ref
from desired_state.positions import Path
from desired_state.product import LaneSpec, ProductSpec

# Dokploy refuses an `appName` longer than this (application.create / compose.create in
# tests/contracts/dokploy-openapi.v0.30.json: maxLength 63), and a Swarm service name is a DNS
# label of at most 63 characters: a lane's service name `<product>-<lane>` must fit.
SERVICE_NAME_MAX = 63

ProductIssue = tuple[Path, str]


def service_name(product: str, lane: str) -> str:
    """The Dokploy service a product lane maps to."""
    return f"{product}-{lane}"


def product_issues(name: str, spec: ProductSpec) -> list[ProductIssue]:
    return [
        *_env_and_secret_overlap(spec),
        *_service_names_too_long(name, spec),
        *_health_checks_with_nothing_to_check(spec),
        *_unpinned_prod_compose_images(spec),
        *_renames_from_a_lane_that_still_exists(spec),
    ]


def _renames_from_a_lane_that_still_exists(spec: ProductSpec) -> Iterator[ProductIssue]:
    names = {lane.name for lane in spec.lanes}
    claimed: dict[str, str] = {}
    for index, lane in enumerate(spec.lanes):
        previous = lane.renamed_from
        if previous is None:
            continue
        if previous in names:
            yield (
                _lane_path(index, "renamedFrom"),
                f"lane {previous!r} still exists in this product: a lane cannot take over a "
                "lane that is still declared",
            )
        elif previous in claimed:
            yield (
                _lane_path(index, "renamedFrom"),
                f"lanes {claimed[previous]!r} and {lane.name!r} both say they were {previous!r}",
            )
        claimed.setdefault(previous, lane.name)


def _lane_path(index: int, *rest: str | int) -> Path:
    return ("spec", "lanes", index, *rest)


def _env_and_secret_overlap(spec: ProductSpec) -> Iterator[ProductIssue]:
    """A key with both a plain value and a secret source, once the product's env and secrets
    are merged into each lane's, never converges and could show the secret as 'before'."""
    seen: set[Path] = set()
    for index, lane in enumerate(spec.lanes):
        env = {**spec.env, **lane.env}
        secrets = {**spec.secrets, **lane.secrets}
        for key in sorted(set(env) & set(secrets)):
            path = _overlap_path(spec, lane, index, key)
            if path in seen:
                continue
            seen.add(path)
            yield (
                path,
                f"{key} is set both in env and in secrets for lane {lane.name!r} (after the "
                "product's env and secrets are merged with the lane's); a key takes its value "
                "from one place: remove it from env or from secrets",
            )


def _overlap_path(spec: ProductSpec, lane: LaneSpec, index: int, key: str) -> Path:
    if key in lane.env:
        return _lane_path(index, "env", key)
    if key in lane.secrets:
        return _lane_path(index, "secrets", key)
    return ("spec", "env", key)


def _service_names_too_long(name: str, spec: ProductSpec) -> Iterator[ProductIssue]:
    for index, lane in enumerate(spec.lanes):
        service = service_name(name, lane.name)
        if len(service) > SERVICE_NAME_MAX:
            yield (
                _lane_path(index, "name"),
                f"the lane's Dokploy service name {service!r} is {len(service)} characters; "
                f"Dokploy accepts at most {SERVICE_NAME_MAX}: shorten the product or lane name",
            )


def _health_checks_with_nothing_to_check(spec: ProductSpec) -> Iterator[ProductIssue]:
    for index, lane in enumerate(spec.lanes):
        if lane.domains:
            continue
        for number, check in enumerate(lane.health_checks):
            if check.url is None:
                yield (
                    _lane_path(index, "healthChecks", number),
                    f"this health check has no `url`, and lane {lane.name!r} has no domain to "
                    "check it on: give it a `url`, or give the lane a domain",
                )


def _unpinned_prod_compose_images(spec: ProductSpec) -> Iterator[ProductIssue]:
    for index, lane in enumerate(spec.lanes):
        if lane.target != "compose" or not lane.is_prod or not lane.compose_file:
            continue
        for problem in compose_image_problems(lane.compose_file):
            yield (
                _lane_path(index, "composeFile"),
                f"lane {lane.name!r} is a prod lane: {problem}",
            )


def compose_image_problems(compose_file: str) -> list[str]:
    """Why a compose file is not made only of images pinned by digest; empty when it is."""
    services = _compose_services(compose_file)
    if services is None:
        return [
            "its compose file is not a YAML mapping with `services`, so its images cannot "
            "be checked"
        ]
    problems: list[str] = []
    for name, service in sorted(services.items(), key=lambda item: str(item[0])):
        problem = _service_image_problem(service)
        if problem is not None:
            problems.append(f"compose service {str(name)!r} {problem}")
    return problems


def _compose_services(compose_file: str) -> dict[Any, Any] | None:
    try:
        data = YAML(typ="safe", pure=True).load(compose_file)
    except YAMLError:
        return None
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) and services else None


def _service_image_problem(service: Any) -> str | None:
    image = service.get("image") if isinstance(service, dict) else None
    if image is None:
        return (
            "has no `image` (a build from source is not pinned): prod compose services must "
            "use images pinned by digest (name@sha256:<64 hex>)"
        )
    if not isinstance(image, str) or not has_digest(image):
        return (
            f"uses {_shown(image)}: every image in a prod compose file must be pinned by an "
            "immutable digest (name@sha256:<64 hex>), not a tag or a variable"
        )
    return None


_VARIABLE = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")


def _shown(image: Any) -> str:
    """An image reference or a bare variable is quoted; anything else is not echoed."""
    if isinstance(image, str) and (_VARIABLE.match(image) or is_image_ref(image)):
        return repr(image)
    return "an image that is not an image reference (not shown)"
