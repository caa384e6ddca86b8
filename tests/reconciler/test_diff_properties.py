"""Properties of the pure product-lane diff, over generated lanes and observations."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import ProductLane
from reconciler.kinds.product.ops import Op
from reconciler.kinds.product.params import Deploy
from reconciler.kinds.product.rule_input import deploy_title, desired_config_hash
from tests.support.lane_strategies import observed_as_desired, product_lanes, secret_facts


@settings(max_examples=150, deadline=None)
@given(product_lanes())
def test_an_observed_service_equal_to_the_lane_needs_nothing(
    drawn: tuple[ProductLane, dict[str, str]],
) -> None:
    lane, secrets = drawn
    diff = diff_product_lane(
        lane.lane, lane, observed_as_desired(lane, secrets), secret_facts(secrets)
    )
    assert diff.actions == [] and diff.blockers == []


@settings(max_examples=150, deadline=None)
@given(product_lanes(), product_lanes())
def test_changes_never_carry_a_secret_value(
    wanted: tuple[ProductLane, dict[str, str]], seen: tuple[ProductLane, dict[str, str]]
) -> None:
    lane, secrets = wanted
    other_lane, other_secrets = seen
    observed = observed_as_desired(other_lane, other_secrets)
    diff = diff_product_lane(lane.lane, lane, observed, secret_facts(secrets))
    rendered = repr([(a.changes, a.reason, a.target) for a in diff.actions])
    declared_plain = set(lane.env.values())  # plain desired values are shown, by design
    for value in {*secrets.values(), *other_secrets.values()} - declared_plain:
        assert value not in rendered


@settings(max_examples=100, deadline=None)
@given(product_lanes())
def test_an_unowned_clash_is_never_acted_on(drawn: tuple[ProductLane, dict[str, str]]) -> None:
    lane, secrets = drawn
    observed = observed_as_desired(lane, secrets)
    observed.owned = None
    observed.service = None
    observed.clashes = ["application svc-9 (p-testing)"]
    diff = diff_product_lane(lane.lane, lane, observed, secret_facts(secrets))
    assert diff.actions == [] and [b.type for b in diff.blockers] == ["not_owned"]


@settings(max_examples=100, deadline=None)
@given(product_lanes())
def test_a_removed_lane_deletes_only_what_it_owns_and_never_a_protected_one(
    drawn: tuple[ProductLane, dict[str, str]],
) -> None:
    lane, secrets = drawn
    observed = observed_as_desired(lane, secrets)
    diff = diff_product_lane(lane.lane, None, observed, secret_facts(secrets))
    if lane.protect:
        assert diff.actions == [] and [b.type for b in diff.blockers] == ["protected_lane"]
    else:
        assert [a.op for a in diff.actions] == [Op.delete_service]
    observed.owned = None
    assert diff_product_lane(lane.lane, None, observed, secret_facts(secrets)).actions == []


@settings(max_examples=150, deadline=None)
@given(
    product_lanes(),
    st.sampled_from(["running", "done", "error", "cancelled", None]),
    st.booleans(),
    st.booleans(),
)
def test_a_parked_deploy_is_awaited_never_asked_for_again(
    drawn: tuple[ProductLane, dict[str, str]],
    latest_status: str | None,
    latest_is_parked: bool,
    latest_titled_ours: bool,
) -> None:
    """Whatever Dokploy's newest deployment shows, a lane whose deploy of the desired
    configuration was parked while building plans to await a deployment, never a new ask."""
    lane, secrets = drawn
    observed = observed_as_desired(lane, secrets)
    assert observed.service is not None and observed.owned is not None
    config_hash = desired_config_hash(lane, secret_facts(secrets))
    parked = {
        "config_hash": config_hash,
        "at": 1000.0,
        "deployment_id": "dep-parked",
        "building_since": 1001.0,
    }
    facts = {**observed.owned.facts, "deployed_config_hash": "older", "deploy_asked": parked}
    observed.owned = dataclasses.replace(observed.owned, facts=facts)
    observed.service = dataclasses.replace(
        observed.service,
        latest_deployment=latest_status,
        latest_deployment_id="dep-parked" if latest_is_parked else "dep-other",
        latest_deployment_title=deploy_title(lane.lane, config_hash)
        if latest_titled_ours
        else "somebody's deploy",
    )
    diff = diff_product_lane(lane.lane, lane, observed, secret_facts(secrets), now=1010.0)
    deploys = [a for a in diff.actions if a.op == Op.deploy]
    assert len(deploys) == 1 and not diff.blockers
    awaited = Deploy.model_validate(deploys[0].params).awaiting
    assert awaited is not None and awaited.deployment_id in {"dep-parked", "dep-other"}
    if awaited.deployment_id == "dep-parked":  # its timeout still counts from the first sight
        assert awaited.building_since == 1001.0
