"""The env rule: plain values and secret references, shown without any secret value."""

from __future__ import annotations

from desired_state.secrets import looks_like_secret
from providers.dokploy.envfile import parse as parse_env
from reconciler.core.plans import Change
from reconciler.kinds.base import LaneDiff, ProposedAction
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.observed import (
    ObservedService,
)
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import SetEnv, unknown_refs
from reconciler.kinds.product.rule_input import SecretFacts, SeenLane
from reconciler.secret_values import fingerprint as secret_fingerprint


def env_rule(seen: SeenLane, result: LaneDiff) -> str | None:
    lane, facts = seen.desired, seen.facts
    owned_keys, plain_keys = set(facts.managed_env_keys), set(facts.plain_env_keys)
    env_changes = _env_changes(lane, seen.service, owned_keys, plain_keys, seen.secrets)
    if not env_changes:
        return None
    removed = sorted(k for k in owned_keys if k not in lane.env and k not in lane.secrets)
    result.actions.append(
        ProposedAction(
            key="env",
            op=Op.set_env,
            target=seen.target,
            reason="environment differs from the desired env and secrets",
            changes=env_changes,
            params=SetEnv(
                service=seen.service_ref,
                plain=dict(sorted(lane.env.items())),
                secret_refs=dict(sorted(lane.secrets.items())),
                secret_fingerprints=dict(sorted(seen.secrets.desired.items())),
                remove=removed,
            ),
            after=unknown_refs(seen.service_ref),
        )
    )
    return "env changed"


def _env_changes(
    lane: ProductLane,
    service: ObservedService | None,
    owned_keys: set[str],
    plain_keys: set[str],
    secrets: SecretFacts,
) -> list[Change]:
    observed = parse_env(service.env_text) if service else {}
    changes: list[Change] = []
    for key, value in sorted(lane.env.items()):
        if observed.get(key) != value:
            before = _shown_before(lane, plain_keys, secrets.salt, key, observed.get(key))
            changes.append(Change(field=f"env.{key}", before=before, after=value))
    for key, desired_fp in sorted(secrets.desired.items()):
        current = observed.get(key)
        current_fp = secret_fingerprint(secrets.salt, current) if current is not None else None
        if current_fp != desired_fp:
            changes.append(
                Change(field=f"env.{key}", before=current_fp, after=desired_fp, secret=True)
            )
    for key in sorted(owned_keys):
        if key not in lane.env and key not in lane.secrets and key in observed:
            changes.append(
                Change(
                    field=f"env.{key}",
                    before=secret_fingerprint(secrets.salt, observed[key]),
                    after=None,
                    secret=True,
                )
            )
    return changes


def _shown_before(
    lane: ProductLane, plain_keys: set[str], salt: str, key: str, value: str | None
) -> str | None:
    """A value read from Dokploy is shown in clear only if Setpoint wrote it as plain env."""
    if value is None or key in lane.secrets:
        return None  # a key with a secret source: no 'before' at all, whatever was stored
    if key in plain_keys and key in lane.env and not looks_like_secret(key, value):
        return value
    return secret_fingerprint(salt, value)
