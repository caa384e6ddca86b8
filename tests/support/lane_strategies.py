"""Hypothesis strategies for product lanes, and an observation that matches a lane exactly:
the ground the pure diff's property tests stand on."""

from __future__ import annotations

from hypothesis import strategies as st

from desired_state.secrets import SecretRef
from reconciler.core.inventory import Owned
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane
from reconciler.kinds.product.observed import ObservedDomain, ObservedProductLane, ObservedService
from reconciler.kinds.product.policy import ApplyPolicy
from reconciler.kinds.product.rule_input import SecretFacts, desired_config_hash
from reconciler.secret_values import fingerprint

SALT = "property-salt"
keys = st.from_regex(r"[A-Z][A-Z0-9_]{0,7}", fullmatch=True)
plain_values = st.from_regex(r"[a-z0-9.-]{0,12}", fullmatch=True)
secret_values = st.from_regex(r"[A-Za-z0-9]{12,24}", fullmatch=True)
hosts = st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True)


@st.composite
def product_lanes(draw: st.DrawFn) -> tuple[ProductLane, dict[str, str]]:
    env = draw(st.dictionaries(keys, plain_values, max_size=5))
    secret_keys = draw(st.lists(keys.filter(lambda k: k not in env), max_size=3, unique=True))
    secrets = {k: draw(secret_values) for k in secret_keys}
    domains = tuple(
        DesiredDomain(host=h, path="/", port=8080, https=draw(st.booleans()), service=None)
        for h in draw(st.lists(hosts, max_size=3, unique=True))
    )
    lane = ProductLane(
        lane="product:p/testing",
        product="p",
        lane_name="testing",
        generation=1,
        target="application",
        project="p",
        environment="testing",
        service_name="p-testing",
        image=draw(st.sampled_from(["ghcr.io/a/p:1", "ghcr.io/a/p:2"])),
        compose_file=None,
        env=env,
        secrets={
            k: SecretRef.model_validate({"fromEnv": f"SETPOINT_SECRET_V_{k}"}) for k in secrets
        },
        domains=domains,
        replicas=draw(st.integers(min_value=0, max_value=5)),
        health_checks=(),
        deploy_timeout_seconds=60,
        apply_policy=ApplyPolicy.manual,
        protect=draw(st.booleans()),
        prod=False,
    )
    return lane, secrets


def secret_facts(secrets: dict[str, str]) -> SecretFacts:
    return SecretFacts(salt=SALT, desired={k: fingerprint(SALT, v) for k, v in secrets.items()})


def observed_as_desired(lane: ProductLane, secrets: dict[str, str]) -> ObservedProductLane:
    env_text = "".join(f"{k}={v}\n" for k, v in {**lane.env, **secrets}.items())
    service = ObservedService(
        type="application",
        id="svc-1",
        name=lane.service_name,
        environment_id="env-1",
        image=lane.image,
        compose_file=None,
        env_text=env_text,
        replicas=lane.replicas,
        domains=tuple(
            ObservedDomain(f"d{i}", d.host, d.path, d.port, d.https, d.service)
            for i, d in enumerate(lane.domains)
        ),
        latest_deployment="done",
    )
    owned = Owned(
        provider="dokploy",
        object_type="application",
        object_id="svc-1",
        name=lane.service_name,
        kind="product",
        lane=lane.lane,
        protected=lane.protect,
        adopted=False,
        facts={
            "managed_env_keys": sorted({*lane.env, *secrets}),
            "plain_env_keys": sorted(lane.env),
            "deployed_config_hash": desired_config_hash(lane, secret_facts(secrets)),
        },
    )
    return ObservedProductLane(
        project_id="p1", environment_id="env-1", service=service, owned=owned
    )
