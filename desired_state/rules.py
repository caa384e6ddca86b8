"""Rules across fields, written once over plain data so they run even beside field errors.

Each rule yields `(path, message)` with the path relative to what it was given, so the loader
can point at the line of the field concerned. The models call the same rules (and raise
`RuleError`), so a spec built in code is held to them too; the loader reports rules from here
and skips the models' copy, which runs only once every field is valid.

Rules read plain data defensively: a field of the wrong type is a field error already, so a
rule that cannot read its fields says nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from desired_state.names import check_hostname, has_digest
from desired_state.templates import check_template, render

FieldPath = tuple[str | int, ...]
Problem = tuple[FieldPath, str]
PROD_LANE_NAMES = frozenset({"prod", "production"})


class RuleError(ValueError):
    """A rule broken in a model built in code; the loader reports it from the rule instead."""


def raise_rules(problems: Iterator[Problem]) -> None:
    found = [message for _, message in problems]
    if found:
        raise RuleError("; ".join(found))


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(data: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = data.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Host


def host_rules(spec: Mapping[str, Any]) -> Iterator[Problem]:
    kind = _str(spec, "type")
    if kind == "dokploy-server" and not spec.get("dokployServer"):
        yield ("type",), "a dokploy-server host needs `dokployServer`"
    if kind == "ssh" and spec.get("ssh") is None:
        yield ("type",), "an ssh host needs `ssh`"


# RunnerPool


def runner_pool_rules(spec: Mapping[str, Any]) -> Iterator[Problem]:
    count = _map(spec.get("count"))
    low, high = _int(count, "min"), _int(count, "max")
    if low is not None and high is not None and low > high:
        yield ("count", "min"), f"count.min ({low}) must be <= count.max ({high})"
    scope = _str(spec, "scope")
    if scope == "repository" and not spec.get("repository"):
        yield ("scope",), "a repository-scoped pool needs `repository`"
    if scope == "organization" and not spec.get("organization"):
        yield ("scope",), "an organization-scoped pool needs `organization`"


# Product


def secret_ref_rules(ref: Mapping[str, Any]) -> Iterator[Problem]:
    given = [key for key in ("fromEnv", "fromFile", "fromStore") if ref.get(key) is not None]
    if len(given) != 1:
        yield (), "a secret reference needs exactly one of fromEnv, fromFile or fromStore"


def is_prod_lane(lane: Mapping[str, Any]) -> bool:
    tier = lane.get("tier")
    return tier == "prod" or (tier is None and lane.get("name") in PROD_LANE_NAMES)


def lane_rules(lane: Mapping[str, Any]) -> Iterator[Problem]:
    yield from _lane_source_rules(lane)
    yield from _compose_lane_rules(lane)
    image = _str(lane, "image")
    if is_prod_lane(lane) and image is not None and not has_digest(image):
        yield (
            ("image",),
            (
                f"lane {lane.get('name')!r} is a prod lane: its image must be pinned by an immutable "
                "digest (name@sha256:<64 hex>), not a tag"
            ),
        )
    secrets = _map(lane.get("secrets"))
    for key in sorted(set(_map(lane.get("env"))) & set(secrets)):
        yield ("secrets", key), f"{key} set both in env and secrets"
    yield from _identity_rules(lane, secrets)


# The env keys `runtimeIdentity` injects (kinds/product/identity.py writes them).
IDENTITY_KEYS = ("SETPOINT_GENERATION", "SETPOINT_IMAGE_DIGEST")


def _identity_rules(lane: Mapping[str, Any], secrets: Mapping[str, Any]) -> Iterator[Problem]:
    identity = lane.get("runtimeIdentity") is True
    checks = lane.get("healthChecks")
    for index, check in enumerate(checks if isinstance(checks, list) else []):
        if isinstance(check, Mapping) and check.get("expectIdentity") is True and not identity:
            yield (
                ("healthChecks", index, "expectIdentity"),
                "`expectIdentity` needs the lane's `runtimeIdentity: true`: nothing else puts "
                "the identity it checks into the service's env",
            )
    if identity:
        for where, names in (("env", _map(lane.get("env"))), ("secrets", secrets)):
            for key in IDENTITY_KEYS:
                if key in names:
                    yield (where, key), f"{key} is set by `runtimeIdentity`, not by the lane"


def _lane_source_rules(lane: Mapping[str, Any]) -> Iterator[Problem]:
    target = _str(lane, "target", "application")
    where: FieldPath = ("target",) if "target" in lane else ()
    if target == "application" and lane.get("image") is None:
        yield where, "an application lane needs `image`"
    if target == "compose" and not lane.get("composeFile"):
        yield where, "a compose lane needs `composeFile`"
    if target == "application" and lane.get("composeFile"):
        yield ("composeFile",), "`composeFile` is only for compose lanes"


def _compose_lane_rules(lane: Mapping[str, Any]) -> Iterator[Problem]:
    if _str(lane, "target", "application") != "compose":
        return
    for index, domain in enumerate(_list(lane.get("domains"))):
        if isinstance(domain, Mapping) and domain.get("service") is None:
            yield (
                ("domains", index),
                ("a compose lane's domains need `service`: the service they route to"),
            )
    replicas = _int(lane, "replicas", 1)
    if replicas is not None and replicas != 1:
        yield ("replicas",), "`replicas` is for application lanes; a compose file sets its own"


def preview_rules(preview: Mapping[str, Any]) -> Iterator[Problem]:
    domain = _str(preview, "domain")
    if domain is not None:
        try:
            check_template(domain, frozenset({"number", "product", "slug"}))
            check_hostname(render(domain, {"number": 1, "product": "product", "slug": "pr-1"}))
        except (ValueError, KeyError, IndexError) as exc:
            yield ("domain",), str(exc)
    if preview.get("enabled") is True and preview.get("image") is None:
        yield ("enabled",), "an enabled preview policy needs an `image` template"


def product_rules(spec: Mapping[str, Any]) -> Iterator[Problem]:
    names: list[str] = []
    for index, lane in enumerate(_list(spec.get("lanes"))):
        name = _str(_map(lane), "name")
        if name is not None and name in names:
            yield ("lanes", index, "name"), f"lane names must be unique; repeated: {name}"
        if name is not None:
            names.append(name)
    preview = _map(spec.get("preview"))
    template_lane = _str(preview, "templateLane", "testing")
    if preview.get("enabled") is True and template_lane is not None and template_lane not in names:
        where: FieldPath = ("templateLane",) if "templateLane" in preview else ("enabled",)
        yield (
            ("preview", *where),
            (
                f"preview.templateLane {template_lane!r} is not a lane of this "
                f"product (lanes: {', '.join(names)})"
            ),
        )


def product_document_rules(spec: Mapping[str, Any]) -> Iterator[Problem]:
    """Every rule of a Product spec and of what it holds, with paths from the spec."""
    yield from product_rules(spec)
    yield from _secret_map_rules(spec.get("secrets"), ("secrets",))
    yield from _prefixed(("preview",), preview_rules(_map(spec.get("preview"))))
    for index, lane in enumerate(_list(spec.get("lanes"))):
        if isinstance(lane, Mapping):
            yield from _prefixed(("lanes", index), lane_rules(lane))
            yield from _secret_map_rules(lane.get("secrets"), ("lanes", index, "secrets"))


def _secret_map_rules(secrets: Any, prefix: FieldPath) -> Iterator[Problem]:
    for key, ref in _map(secrets).items():
        if isinstance(ref, Mapping):
            yield from _prefixed((*prefix, key), secret_ref_rules(ref))


def _prefixed(prefix: FieldPath, problems: Iterator[Problem]) -> Iterator[Problem]:
    for path, message in problems:
        yield (*prefix, *path), message


SPEC_RULES = {
    "Product": product_document_rules,
    "RunnerPool": runner_pool_rules,
    "Host": host_rules,
}
