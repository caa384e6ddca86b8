"""Property: a plan that deletes a lane's service and gives its hosts to other lanes frees
each host on the old service before a new lane claims it, and only after the new service
exists; a host someone else routes too is never moved (it stays a route_conflict)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.assembly import KindFacts, build_plan
from reconciler.core.inventory import Owned
from reconciler.core.plans import Action, BlastRadiusGuard
from reconciler.kinds.base import Observation
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import DesiredDomain, ProductLane
from reconciler.kinds.product.observed import ObservedDomain, ObservedProductLane, ObservedService
from reconciler.kinds.product.ops import PRODUCT_OPS, Op
from reconciler.kinds.product.reasons import ROUTE_CONFLICT
from reconciler.kinds.product.route_moves import plan_routes
from reconciler.kinds.product.rule_input import DEFAULT_ENVIRONMENT, SecretFacts
from reconciler.runtime import utcnow
from tests.support.lane_strategies import product_lanes

FACTS = SecretFacts(salt="s", desired={})
ROUTES = [f"h{i}.example.com/" for i in range(4)]
names = st.sampled_from(["alpha", "omega", "mid"])


def _old(product: str, routes: list[str]) -> ObservedProductLane:
    service_id = f"old-{product}"
    domains = tuple(ObservedDomain(f"d-{product}-{r}", r[:-1], "/", 80, True, None) for r in routes)
    service = ObservedService(
        type="application",
        id=service_id,
        name=f"{product}-prod",
        environment_id="env-1",
        image="i",
        compose_file=None,
        env_text="",
        replicas=1,
        domains=domains,
        latest_deployment="done",
    )
    owned = Owned(
        "dokploy",
        "application",
        service_id,
        f"{product}-prod",
        "product",
        f"product:{product}/prod",
        False,
        False,
        {},
    )
    return ObservedProductLane(
        project_id="p1", environment_id="env-1", service=service, owned=owned
    )


@settings(max_examples=100, deadline=None)
@given(
    product_lanes(),
    names,
    names,
    st.lists(st.sampled_from(ROUTES), min_size=1, unique=True),
    st.sets(st.sampled_from(ROUTES)),
)
def test_a_moved_host_is_freed_after_the_new_service_exists_and_before_it_is_claimed(
    drawn: tuple[ProductLane, dict[str, str]],
    old_name: str,
    new_name: str,
    routes: list[str],
    hand_made: set[str],
) -> None:
    if old_name == new_name:
        new_name = f"{new_name}x"
    template, _ = drawn
    new = dataclasses.replace(
        template,
        lane=f"product:{new_name}/prod",
        product=new_name,
        service_name=f"{new_name}-prod",
        environment=DEFAULT_ENVIRONMENT,
        protect=False,
        domains=tuple(DesiredDomain(r[:-1], "/", 80, True, None) for r in routes),
    )
    old_key = f"product:{old_name}/prod"
    seen_new = ObservedProductLane(project_id="p1", environment_id="env-1")
    for route in routes:
        seen_new.route_holders[route] = [f"application old-{old_name}"]
        seen_new.route_holder_ids[route] = [f"old-{old_name}"]
        if route in hand_made:
            seen_new.route_holders[route].append("application by-hand")
            seen_new.route_holder_ids[route].append("by-hand")
    observation = Observation(lanes={old_key: _old(old_name, routes), new.lane: seen_new})
    route_plan = plan_routes({new.lane: new}, observation)
    diffs = [
        diff_product_lane(old_key, None, observation.lanes[old_key], FACTS, routes=route_plan),
        diff_product_lane(new.lane, new, seen_new, FACTS, routes=route_plan),
    ]
    facts = KindFacts(ops=PRODUCT_OPS, guard=BlastRadiusGuard(max_deletions=5), owned=5)
    plan = build_plan(
        diffs=diffs,
        kinds={"product": facts},
        fingerprints={},
        generations={},
        desired_revision="r",
        created_by="t",
        now=utcnow(),
        ttl=timedelta(minutes=5),
    )
    order = {a.id: n for n, a in enumerate(plan.actions)}
    [create] = [a for a in plan.actions if a.op == Op.create_application]

    def of(op: Op, route: str) -> list[Action]:
        return [a for a in plan.actions if a.op == op and a.target.endswith(f"/domain/{route}")]

    for route in routes:
        releases, claims = of(Op.release_domain, route), of(Op.upsert_domain, route)
        if route in hand_made:
            assert releases == [] and claims == []
            continue
        [release], [claim] = releases, claims
        assert release.depends_on == [create.id] and order[create.id] < order[release.id]
        assert release.id in claim.depends_on and order[release.id] < order[claim.id]
    conflicts = [b for b in plan.blockers if b.type == ROUTE_CONFLICT.code]
    assert bool(conflicts) == bool(hand_made & set(routes))
    for blocker in conflicts:
        assert f"old-{old_name}" not in blocker.message  # the plan deletes that one
