"""What an apply costs in Dokploy requests, and that fewer requests cost no safety."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from reconciler.core.apply import apply_plan
from reconciler.core.planning import compute_plan
from reconciler.kinds.product.ops import Op
from reconciler.runtime import Runtime
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.providers.dokploy.fixtures import make_client
from tests.reconciler.conftest import dokploy, store_fleet

DIGEST = "sha256:" + "ab" * 32


def fleet_of(products: int) -> str:
    """Products of two application lanes each, one in a new `testing` environment."""
    return "---\n".join(
        f"""apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: p{i}}}
spec:
  repository: acme/p{i}
  dokploy: {{project: p{i}}}
  runtime: {{port: 8080}}
  env: {{LOG_LEVEL: info}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/p{i}:main
      domains: [{{host: testing.p{i}.example.com}}]
    - name: prod
      image: ghcr.io/acme/p{i}@{DIGEST}
      domains: [{{host: p{i}.example.com}}]
"""
        for i in range(products)
    )


def transport_of(client: DokployClient) -> RecordingTransport:
    transport = client._http._transport
    assert isinstance(transport, RecordingTransport)
    return transport


async def test_an_apply_that_creates_n_projects_lists_projects_once(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    products = 6
    (tmp_path / "fleet.yaml").write_text(fleet_of(products))
    store_fleet(engine, tmp_path, prune=True)
    plan = await compute_plan(runtime)
    assert [a.op for a in plan.actions].count(Op.create_project) == products
    sent = transport_of(dokploy(runtime)).seen
    sent.clear()
    assert (await apply_plan(runtime, plan.plan_id)).ok
    calls = Counter(procedure for _, procedure in sent)
    lanes = 2 * products
    # One listing re-checks the plan, one serves every create: not one per project.
    assert calls["project.all"] == 2
    assert calls["project.create"] == calls["environment.create"] == products
    # Creates the plan knows to be needed are sent without reading first.
    assert calls["environment.byProjectId"] == calls["environment.one"] == 0
    assert calls["application.create"] == calls["application.deploy"] == lanes
    # Each new service is deployed once and polled, never listed before its first deploy.
    assert lanes <= calls["deployment.all"] <= 4 * lanes
    # The env read before saving stays: it keeps keys Setpoint does not manage.
    assert calls["application.one"] == calls["application.saveEnvironment"] == lanes


async def test_creates_whose_answers_are_lost_mid_apply_make_no_duplicates(
    runtime: Runtime,
    emulator: Emulator,
    dokploy_app: Starlette,
    engine_contract: ContractRecorder,
) -> None:
    async with make_client(dokploy_app, engine_contract, timeout=0.2) as client:
        impatient = dataclasses.replace(runtime, providers={**runtime.providers, "dokploy": client})
        plan = await compute_plan(impatient)
        # Dokploy does the work, then the answer never arrives: the duplicate trap, once each.
        for procedure in ("project.create", "application.create", "compose.create"):
            emulator.faults.timeout(procedure, seconds=5, when="after", count=1)
        result = await apply_plan(impatient, plan.plan_id)
        assert result.ok, result
        services = [*emulator.state.applications.values(), *emulator.state.composes.values()]
        names = Counter(row["name"] for row in services)
        assert len(names) == 6 and set(names.values()) == {1}, names
        projects = Counter(row["name"] for row in emulator.state.projects.values())
        assert len(projects) == 3 and set(projects.values()) == {1}, projects
        again = await compute_plan(impatient)
        assert again.actions == [] and again.blockers == []


async def test_a_delete_whose_answer_is_lost_is_confirmed_and_released(
    runtime: Runtime,
    emulator: Emulator,
    engine: Engine,
    dokploy_app: Starlette,
    engine_contract: ContractRecorder,
    tmp_path: Path,
) -> None:
    from reconciler.records.ownership import snapshot
    from tests.conftest import EXAMPLES

    async with make_client(dokploy_app, engine_contract, timeout=0.2) as client:
        impatient = dataclasses.replace(runtime, providers={**runtime.providers, "dokploy": client})
        assert (await apply_plan(impatient, (await compute_plan(impatient)).plan_id)).ok
        for name in ("shop.yaml", "ledger.yaml"):
            (tmp_path / name).write_text((EXAMPLES / "fleet" / name).read_text())
        store_fleet(engine, tmp_path, prune=True)  # docs-site is no longer desired
        plan = await compute_plan(impatient)
        # The two services, and the environment Setpoint created for docs-site's testing lane.
        assert {a.op for a in plan.actions} == {Op.delete_service, Op.delete_environment}
        emulator.faults.timeout("application.delete", seconds=5, when="after", count=2)
        result = await apply_plan(impatient, plan.plan_id, allow_destroy=3)
        assert result.ok, result  # gone, read by id: the lost answer does not matter
        assert not [o for o in snapshot(engine).objects if o.lane.startswith("product:docs-site")]
        again = await compute_plan(impatient)
        assert again.actions == [] and again.blockers == []
