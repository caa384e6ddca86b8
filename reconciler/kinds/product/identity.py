"""Runtime identity: what a lane's service is told it runs, and a health check's proof of it.

With `runtimeIdentity: true`, a lane's env gains `SETPOINT_GENERATION` and, for an image
pinned by digest, `SETPOINT_IMAGE_DIGEST`. A health check with `expectIdentity: true` then
passes only when the answer reports both back (headers `X-Setpoint-Generation` and
`X-Setpoint-Image-Digest`, or a JSON body with the env names as keys): the lane is verified
to run what was planned, not just something that answers 200.

"Generation" here is the lane's deploy generation, not the Product's desired generation: a
fingerprint of exactly what a deploy is built from (image, compose file, env, the secrets'
references, replicas, and the domains of a service whose domains need a deploy). The
Product's generation moves with every edit of any lane, and of policy fields (`apply`,
`protect`, health checks) that change nothing the service runs; injecting it would
redeploy every lane of the product for each of them. The fingerprint moves only when a
deploy would happen anyway. A secret's rotated value is not part of it (its value is never
read here, and it does not change which configuration was planned): the secret's reference
is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from desired_state.rules import IDENTITY_KEYS
from reconciler.health import HealthResult
from reconciler.kinds.product.services import strategy_for

if TYPE_CHECKING:  # lanes.py builds its lanes with `with_identity`
    from reconciler.kinds.product.lanes import ProductLane

GENERATION_KEY, DIGEST_KEY = IDENTITY_KEYS
_DIGEST_MARK = "@sha256:"


def deploy_generation(lane: ProductLane) -> str:
    """The fingerprint of what the lane's service is built from (its identity env aside)."""
    fields: dict[str, Any] = {
        "image": lane.image,
        "compose_file": lane.compose_file,
        "env": {k: v for k, v in sorted(lane.env.items()) if k not in IDENTITY_KEYS},
        "secrets": {k: ref.describe() for k, ref in sorted(lane.secrets.items())},
        "source_sha": lane.source_sha,
    }
    strategy = strategy_for(lane.target)
    if strategy.has_replicas:
        fields["replicas"] = lane.replicas
    if strategy.domains_need_deploy:
        fields["domains"] = sorted(
            (d.host, d.path, d.port, d.https, d.service or "") for d in lane.domains
        )
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_identity(lane: ProductLane) -> ProductLane:
    """The lane with its own identity in its env (and remembered as `identity`), replacing
    any it carried (a preview is made from its template lane, identity and all)."""
    identity = {GENERATION_KEY: deploy_generation(lane)}
    if lane.image is not None and _DIGEST_MARK in lane.image:
        identity[DIGEST_KEY] = "sha256:" + lane.image.split(_DIGEST_MARK, 1)[1]
    env = {k: v for k, v in lane.env.items() if k not in IDENTITY_KEYS}
    return replace(lane, env={**env, **identity}, identity=identity)


def header_of(key: str) -> str:
    """The header an answer reports an identity value in (`SETPOINT_GENERATION` ->
    `x-setpoint-generation`), as an nginx `add_header` of the env value would."""
    return "x-" + key.lower().replace("_", "-")


def verified_identity(result: HealthResult, expected: Mapping[str, str]) -> HealthResult:
    """`result`, failed when it passed but did not report every `expected` value back."""
    if not expected or not result.ok:
        return result
    wrong = [
        f"{key} {result.reported.get(key) or 'not reported'}, planned {value}"
        for key, value in sorted(expected.items())
        if result.reported.get(key) != value
    ]
    if not wrong:
        return result
    reason = "runs something else than planned: " + "; ".join(wrong)
    return replace(result, ok=False, reason=reason)
