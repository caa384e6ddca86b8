"""Plans through the API (shown redacted; applied by the engine's own path, so a stale plan is
refused with the engine's message), /metrics, /healthz, the OpenAPI document, and no secret
value in any answer."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reconciler.api.metrics import STALLED_REASONS
from reconciler.core.planning import compute_plan
from reconciler.core.plans import BlockerType
from reconciler.records import status
from reconciler.records.audit_events import AuditEvent
from reconciler.records.status import Reason
from reconciler.runtime import Runtime, utcnow
from tests.api.conftest import WEBHOOK_SECRET, Mint, add_grant, audit_events, bearer
from tests.reconciler.conftest import ALL_SECRET_VALUES, store_fleet
from tests.support.fleets import example_fleet
from tests.support.secret_scan import assert_no_secrets

RECONCILE = "/v1/lanes/product/shop/testing/reconcile"


async def test_a_stale_plan_is_refused_with_the_engines_message_and_audited_as_the_operator(
    client: httpx.AsyncClient,
    api_runtime: Runtime,
    engine: Engine,
    operator_token: str,
    tmp_path: Path,
) -> None:
    plan = await compute_plan(api_runtime)
    store_fleet(engine, example_fleet(tmp_path, without=("docs-site.yaml",)), prune=True)

    answer = await client.post(f"/v1/plans/{plan.plan_id}/apply", headers=bearer(operator_token))

    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/plan_stale_plan")
    [refused] = audit_events(engine, AuditEvent.apply_refused)
    assert refused.plan_id == plan.plan_id and refused.actor == "operator:alice"
    assert problem["detail"] == refused.data["message"]
    assert "desired state changed" in problem["detail"]
    again = await client.post(f"/v1/plans/{plan.plan_id}/apply", headers=bearer(operator_token))
    assert again.status_code == 409


async def test_an_unknown_plan_is_a_404_problem(
    client: httpx.AsyncClient, operator_token: str
) -> None:
    answer = await client.post("/v1/plans/plan_nope/apply", headers=bearer(operator_token))

    assert answer.status_code == 404 and answer.json()["type"].endswith("/unknown_plan")


async def test_metrics_count_requests_by_route_and_read_operations_and_the_queue(
    client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "product:shop/*")
    await client.post(RECONCILE, headers=bearer(mint()))
    await client.post(RECONCILE, headers=bearer(mint({"aud": "elsewhere"})))

    text = (await client.get("/metrics")).text

    route = "/v1/lanes/{kind}/{lane:path}/reconcile"
    assert f'setpoint_api_requests_total{{method="POST",route="{route}",status="202"}} 1.0' in text
    assert f'setpoint_api_requests_total{{method="POST",route="{route}",status="401"}} 1.0' in text
    assert "setpoint_api_request_duration_seconds_bucket" in text
    assert 'setpoint_api_denials_total{reason="oidc_wrong_audience"} 1.0' in text
    assert 'setpoint_operations{status="pending"} 1.0' in text
    assert 'setpoint_queue_depth{priority="workflow"} 1.0' in text
    assert "shop/testing" not in text  # routes by template, never by lane


async def test_healthz_openapi_and_unknown_paths(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    document = (await client.get("/v1/openapi.json")).json()
    assert "/v1/lanes/{kind}/{lane}/reconcile" in document["paths"]
    reconcile = document["paths"]["/v1/lanes/{kind}/{lane}/reconcile"]["post"]
    assert "apply" in str(reconcile["requestBody"])
    assert "application/problem+json" in reconcile["responses"]["403"]["content"]
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_no_answer_holds_a_secret_value(
    client: httpx.AsyncClient,
    api_runtime: Runtime,
    engine: Engine,
    mint: Mint,
    operator_token: str,
) -> None:
    """Invariant 7 over every route: the plan (which references secrets), lanes, operations,
    refusals, metrics; nor the tokens the callers sent."""
    add_grant(engine, "product:*")
    plan = await compute_plan(api_runtime)
    assert plan.actions
    workflow_token = mint()
    operator = bearer(operator_token)
    created = await client.post(RECONCILE, headers=bearer(workflow_token))
    answers = [
        created,
        await client.post(RECONCILE, headers=bearer(workflow_token)),  # replayed
        await client.get(f"/v1/plans/{plan.plan_id}", headers=operator),
        await client.get(f"/v1/plans/{plan.plan_id}", headers=bearer(mint())),
        await client.get(created.headers["location"], headers=operator),
        await client.get("/v1/lanes", headers=operator),
        await client.post("/v1/plans/plan_nope/apply", headers=operator),
        await client.post("/v1/webhooks/github", content=b"{}"),
        await client.get("/metrics"),
    ]
    assert [a.status_code for a in answers[:4]] == [202, 401, 200, 200]
    text = "\n".join(a.text + str(a.headers) for a in answers)
    assert_no_secrets(text, [*ALL_SECRET_VALUES, WEBHOOK_SECRET, operator_token, workflow_token])


async def test_a_long_apply_is_answered_202_and_the_plan_says_how_it_ended(
    api: FastAPI, engine: Engine, operator_token: str
) -> None:
    """With the service's task group (its lifespan), an apply that outlasts
    `api_apply_wait_seconds` runs on after the 202; the plan's status ends with its result."""
    state = api.state.setpoint
    state.runtime.settings.api_apply_wait_seconds = 0.0
    plan = await compute_plan(state.runtime, ["product:shop/testing"])
    assert plan.actions
    operator = bearer(operator_token)
    transport = httpx.ASGITransport(app=api)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(transport=transport, base_url="http://setpoint.test") as http,
    ):
        started = await http.post(f"/v1/plans/{plan.plan_id}/apply", headers=operator)
        assert started.status_code == 202, started.text
        assert started.headers["location"] == f"/v1/plans/{plan.plan_id}"
        shown = started.json()
        with anyio.fail_after(30):
            while shown["status"] in ("applying", "pending"):
                await anyio.sleep(0.05)
                shown = (await http.get(started.headers["location"], headers=operator)).json()
    assert shown["status"] == "applied" and shown["last_refusal"] is None
    [started_record] = audit_events(engine, AuditEvent.apply_started)
    assert started_record.actor == "operator:alice"


async def test_a_refused_apply_shows_on_the_plan(
    client: httpx.AsyncClient,
    api_runtime: Runtime,
    engine: Engine,
    operator_token: str,
    tmp_path: Path,
) -> None:
    plan = await compute_plan(api_runtime)
    store_fleet(engine, example_fleet(tmp_path, without=("docs-site.yaml",)), prune=True)
    await client.post(f"/v1/plans/{plan.plan_id}/apply", headers=bearer(operator_token))

    shown = (await client.get(f"/v1/plans/{plan.plan_id}", headers=bearer(operator_token))).json()

    assert shown["status"] == "stale"
    assert shown["last_refusal"]["blocker"] == "stale_plan"
    assert shown["last_refusal"]["actor"] == "operator:alice"


async def test_the_review_pages_are_served_beside_the_api(client: httpx.AsyncClient) -> None:
    lanes = await client.get("/lanes")  # reading needs a signed-in operator by default

    assert lanes.status_code == 303 and lanes.headers["location"].startswith("/sign-in")
    assert (await client.get("/sign-in")).headers["content-type"].startswith("text/html")
    assert (await client.get("/healthz")).status_code == 200


async def test_a_bug_is_a_bare_500_problem_without_its_message(
    api: FastAPI, client: httpx.AsyncClient
) -> None:
    async def broken() -> None:
        raise RuntimeError("internal detail: postgres://user:pw@db/x")

    api.add_api_route("/v1/broken", broken)

    answer = await client.get("/v1/broken")

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "the server failed; see its log"
    assert "internal detail" not in answer.text and "Traceback" not in answer.text


async def test_metrics_count_lanes_stalled_by_reason_with_bounded_labels(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    """A refused credential shows on /metrics (issue 23, item 2), and a condition reason
    that is no blocker type does not make a series of its own."""
    status.record(
        engine,
        "runner:ci/1",
        status.stalled(BlockerType.credentials_refused, "GitHub refused the token"),
        now=utcnow(),
    )
    status.record(
        engine, "product:shop/testing", status.stalled(Reason.apply_failed, "boom"), now=utcnow()
    )
    text = (await client.get("/metrics")).text
    assert 'setpoint_lanes_stalled{reason="credentials_refused"} 1.0' in text
    assert 'setpoint_lanes_stalled{reason="not_owned"} 0.0' in text
    stalled_series = [
        line for line in text.splitlines() if line.startswith("setpoint_lanes_stalled{")
    ]
    assert len(stalled_series) == len(STALLED_REASONS) + 1
    assert 'setpoint_lanes_stalled{reason="ApplyFailed"} 1.0' in text


def _series(text: str, metric: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(metric + "{")]


async def test_made_up_methods_paths_and_events_add_a_fixed_number_of_series(
    client: httpx.AsyncClient,
) -> None:
    """Issue 28 item 3: labels before authentication came from the caller (3,000 requests
    added 60,000 series). Methods and events outside the known sets count as `other`,
    paths as their route template (or `unmatched`)."""
    for n in range(60):
        await client.request(f"BOGUS{n}", f"/v1/made-up/{n}")
        await client.request(f"X{n}", "/v1/lanes")
        headers = {"x-github-event": f"made_up_{n}", "x-github-delivery": f"d-{n}"}
        await client.post("/v1/webhooks/github", content=b"{}", headers=headers)
    await client.post("/v1/webhooks/github", content=b"{}", headers={"x-github-event": "push"})

    text = (await client.get("/metrics")).text

    requests = _series(text, "setpoint_api_requests_total")
    assert len(requests) <= 6, requests  # other x {unmatched, /v1/lanes, webhook} x status
    assert all('method="BOGUS' not in s and 'method="X' not in s for s in requests)
    assert any('method="other",route="unmatched"' in s for s in requests)
    assert len(_series(text, "setpoint_api_request_duration_seconds_count")) <= 6
    deliveries = _series(text, "setpoint_webhook_deliveries_total")
    assert [s.split("{")[1].split(",")[0] for s in deliveries] == ['event="other"', 'event="push"']
    assert "made_up" not in text and "BOGUS" not in text


async def test_every_api_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    """Issue 28 item 10: problem answers and /healthz carried no CSP or nosniff."""
    from reconciler.web.guard import CONTENT_SECURITY_POLICY

    answers = {
        "healthz": await client.get("/healthz"),
        "404 problem": await client.get("/v1/nothing-here"),
        "401 problem": await client.post(RECONCILE),
        "metrics": await client.get("/metrics"),
    }
    assert [a.status_code for a in answers.values()] == [200, 404, 401, 200]
    for what, answer in answers.items():
        assert answer.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
