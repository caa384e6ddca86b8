"""Health checks are the product kind's offer (`kinds/product/health.py`), not the runtime's.

`run_health_checks` runs a lane's checks with the probe the deployment gave the product
kind (provider `health`), the one its deploys are verified with; a deployment that gives
none gets the settings' checks, which refuse a target that is not a public address.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from reconciler.kinds.product.health import HEALTH, run_health_checks
from reconciler.kinds.product.lanes import DesiredHealthCheck
from reconciler.runtime import Runtime
from reconciler.settings import Settings
from tests.reconciler.conftest import Workload

CHECK = DesiredHealthCheck(
    url="https://testing.shop.example.com/health", expect_status=200, timeout_seconds=2.0
)


async def test_a_lanes_checks_run_with_the_probe_its_deploys_are_verified_with(
    runtime: Runtime, workload: Workload
) -> None:
    assert runtime.has_provider(HEALTH)
    (passed,) = await run_health_checks(runtime, [CHECK])
    assert passed.ok and passed.status == 200
    workload.status = 503
    (failed,) = await run_health_checks(runtime, [CHECK])
    assert not failed.ok and failed.reason == "status 503, expected 200"
    assert workload.requests == ["testing.shop.example.com/health"] * 2


async def test_with_no_probe_given_the_settings_checks_refuse_a_private_target(
    engine: Engine,
) -> None:
    bare = Runtime(
        database=engine, settings=Settings(database_url="sqlite://"), actor="t", kinds=lambda *_: []
    )
    inside = DesiredHealthCheck(
        url="http://127.0.0.1:9/health", expect_status=200, timeout_seconds=1.0
    )
    (refused,) = await run_health_checks(bare, [inside])
    assert not refused.ok and "not a public target" in refused.reason
