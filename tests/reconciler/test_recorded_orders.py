"""Real Dokploy lists a service's deployments inside `application.one` in no set order (the
v0.30.2 recording shows both orders): what the observer calls a lane's latest deployment is
the one made last, whatever order the rows come in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.dokploy.models import Application
from reconciler.kinds.product.observe import service_from
from tests.providers.dokploy.recording import exchanges

RECORDED_APPLICATIONS = [
    e.json for e in exchanges() if e.procedure == "application.one" and e.status == 200
]


def _latest_id(row: dict[str, object]) -> str | None:
    deployments = row["deployments"]
    assert isinstance(deployments, list)
    if not deployments:
        return None
    return str(max(deployments, key=lambda d: d["createdAt"])["deploymentId"])


def test_the_latest_deployment_of_every_recorded_application_is_the_newest() -> None:
    orders = set()
    for row in RECORDED_APPLICATIONS:
        stamps = [d["createdAt"] for d in row["deployments"]]
        if len(set(stamps)) > 1:
            orders.add(stamps == sorted(stamps))
        seen = service_from(Application.model_validate(row))
        assert seen.latest_deployment_id == _latest_id(row)
    assert orders == {True, False}  # the recording really has both orders


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_latest_deployment_does_not_hang_on_the_order_of_the_rows(data: st.DataObject) -> None:
    row = data.draw(st.sampled_from([r for r in RECORDED_APPLICATIONS if r["deployments"]]))
    shuffled = data.draw(st.permutations(row["deployments"]))
    seen = service_from(Application.model_validate({**row, "deployments": shuffled}))
    assert seen.latest_deployment_id == _latest_id(row)
    assert seen.latest_deployment == "error"  # the recording server never finished a build
