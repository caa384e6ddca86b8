"""Benchmark: the pure part of planning a fleet whose every lane is new (the most actions a
plan can hold: 6 or 7 per product lane), with no provider at all.

Times, in process CPU seconds, the product kind's diff of N lanes against an empty Dokploy
(each action's parameters built and validated as its operation's model), `build_plan`
(ordering by after/provides refs, the parameters dumped once, the digest), and the plan's
dump as the plan store writes it. The best of `--repeat` runs is shown: the machine's other
work only ever adds time.

    uv run python bench/plan_build.py                  # 10,000 lanes
    uv run python bench/plan_build.py --lanes 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from reconciler.core.assembly import KindFacts, build_plan
from reconciler.core.plans import BlastRadiusGuard
from reconciler.kinds.product.diff import diff_product_lane
from reconciler.kinds.product.lanes import DesiredDomain, DesiredHealthCheck, ProductLane
from reconciler.kinds.product.observed import ObservedProductLane
from reconciler.kinds.product.ops import PRODUCT_OPS
from reconciler.kinds.product.policy import ApplyPolicy
from reconciler.kinds.product.rule_input import SecretFacts
from reconciler.runtime import utcnow


def new_lanes(count: int) -> list[ProductLane]:
    lanes = []
    for index in range(count):
        product, name = f"p{index // 2}", ("prod" if index % 2 else "testing")
        host = f"{product}-{name}.example.com"
        lanes.append(
            ProductLane(
                lane=f"product:{product}/{name}",
                product=product,
                lane_name=name,
                generation=1,
                target="application",
                project=product,
                environment="production",
                service_name=f"{product}-{name}",
                image="registry.example.com/app:1",
                compose_file=None,
                env={"A": "1", "B": "2"},
                secrets={},
                domains=(DesiredDomain(host, "/", 80, True, None),),
                replicas=2,
                health_checks=(DesiredHealthCheck(f"https://{host}/health", 200, 5.0),),
                deploy_timeout_seconds=600.0,
                apply_policy=ApplyPolicy.manual,
                protect=False,
                prod=name == "prod",
            )
        )
    return lanes


def once(lanes: list[ProductLane]) -> tuple[int, float, float, float]:
    facts = SecretFacts(salt="bench", desired={})
    started = time.process_time()
    diffs = [diff_product_lane(ln.lane, ln, ObservedProductLane(), facts, now=0.0) for ln in lanes]
    diffed = time.process_time()
    plan = build_plan(
        diffs=diffs,
        kinds={"product": KindFacts(PRODUCT_OPS, BlastRadiusGuard(), 0)},
        fingerprints={},
        generations={ln.lane: 1 for ln in lanes},
        desired_revision="bench",
        created_by="bench",
        now=utcnow(),
        ttl=timedelta(minutes=30),
    )
    built = time.process_time()
    plan.model_dump(mode="json")
    dumped = time.process_time()
    return len(plan.actions), diffed - started, built - diffed, dumped - built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lanes = new_lanes(args.lanes)
    runs = [once(lanes) for _ in range(args.repeat)]
    actions = runs[0][0]
    diff, build, dump = (min(run[part] for run in runs) for part in (1, 2, 3))
    print(
        f"lanes={args.lanes} actions={actions} diff={diff:.2f}s build_plan={build:.2f}s "
        f"dump={dump:.2f}s total={diff + build + dump:.2f}s (CPU, best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
