"""When a change goes wrong (issue 27), through the real CLI over loopback HTTP: a deploy
whose health check fails leaves the lane Degraded with the check's answer as evidence, and
the operator's signed webhook hears of it once, and still once after three more passes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.dokploy.emulator import Emulator, create_app
from reconciler.demo.loopback import serve
from tests.support.cli import Invoke
from tests.support.notes_fleet import notes_fleet
from tests.support.notify_receiver import NotifyReceiver
from tests.support.secret_scan import assert_no_secrets

pytestmark = pytest.mark.e2e

KEY = "whsec-e2e-0123456789abcdef0123456789"
FLEET = notes_fleet(health_path="/healthz", health_check="{path: /healthz}")


@pytest.fixture
def receiver() -> NotifyReceiver:
    return NotifyReceiver(secret=KEY)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, receiver: NotifyReceiver) -> Iterator[Emulator]:
    app = create_app(api_key="wrong-e2e-key", seed=5, build_seconds=0.05)
    with serve(app) as base, serve(receiver.app()) as hooks:
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "wrong-e2e-key")
        monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
        monkeypatch.setenv("SETPOINT_HEALTH_ROUTE_VIA", base)
        monkeypatch.setenv("SETPOINT_PUBLIC_URL", "https://setpoint.example.test")
        monkeypatch.setenv("SETPOINT_NOTIFY_SINKS", json.dumps({"ops": f"signed+{hooks}/hook"}))
        monkeypatch.setenv("SETPOINT_NOTIFY_WEBHOOK_SECRET", KEY)
        yield app.state.emulator


def test_a_failing_health_check_degrades_the_lane_and_is_told_once(
    setpoint: Invoke, emulator: Emulator, receiver: NotifyReceiver, tmp_path: Path
) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(FLEET)
    outputs: list[str] = []

    def run(*args: str, expect: int = 0) -> str:
        result = setpoint(*args)
        outputs.append(result.output)
        assert result.exit_code == expect, result.output
        return result.stdout

    run("desired", "apply", str(fleet))
    emulator.faults.unhealthy("testing.notes.example.com", status=503)
    run("run", "--once")

    detail = json.loads(run("status", "notes/testing", "--output", "json"))
    ready = next(c for c in detail["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "Degraded"
    evidence = detail["lastFailure"]["evidence"]
    assert evidence["health_status"] == 503 and evidence["status"] == "done"
    assert evidence["health_check"] == "https://testing.notes.example.com/healthz"
    shown = run("status", "notes/testing")
    assert "health check https://testing.notes.example.com/healthz answered 503" in shown
    plan_id = detail["lastFailure"]["planId"]
    assert "answered 503" in run("plans", "show", plan_id)

    def told() -> list[dict[str, str]]:
        return [i for i in receiver.items() if i["lane"] == "product:notes/testing"]

    (item,) = told()
    assert item["trigger"] == "lane_degraded" and "status 503" in item["body"]
    assert item["link"] == "https://setpoint.example.test/lanes/product/notes/testing"
    assert all(r.signed_ok for r in receiver.received)

    for _ in range(3):
        run("run", "--once")
    assert len(told()) == 1
    listed = json.loads(run("notify", "list", "--output", "json"))
    assert [(n["trigger"], n["state"]) for n in listed] == [("lane_degraded", "delivered")]
    for text in outputs:
        assert_no_secrets(text, [KEY, "wrong-e2e-key"])


def test_an_operator_apply_that_fails_is_told_once(
    setpoint: Invoke, emulator: Emulator, receiver: NotifyReceiver, tmp_path: Path
) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(FLEET.replace("apply: auto-safe", "apply: manual"))
    outputs: list[str] = []

    def run(*args: str, expect: int = 0) -> str:
        result = setpoint(*args)
        outputs.append(result.output)
        assert result.exit_code == expect, result.output
        return result.stdout

    def failed_apply() -> None:
        plan = json.loads(run("plan", "--output", "json"))
        assert plan["actions"], plan
        run("apply", plan["plan_id"], expect=1)

    run("desired", "apply", str(fleet))
    # Dokploy refuses the application outright (a 400 is an answer, not a lost call).
    emulator.faults.fail_next("application.create", status=400, count=2)
    failed_apply()  # no scheduled pass ran: the apply itself told the sink

    def told() -> list[dict[str, str]]:
        return [i for i in receiver.items() if i["lane"] == "product:notes/testing"]

    (item,) = told()
    assert item["trigger"] == "apply_failed" and "400" in item["body"], item
    assert item["link"] == "https://setpoint.example.test/lanes/product/notes/testing"
    assert all(r.signed_ok for r in receiver.received)

    failed_apply()  # the same failure again: the lane never stopped failing
    assert len(told()) == 1
    listed = json.loads(run("notify", "list", "--output", "json"))
    assert [(n["trigger"], n["state"]) for n in listed] == [("apply_failed", "delivered")]
    for text in outputs:
        assert_no_secrets(text, [KEY, "wrong-e2e-key"])


def test_a_lane_that_reports_its_runtime_identity_over_http_is_ready(
    setpoint: Invoke, emulator: Emulator, tmp_path: Path
) -> None:
    fleet = tmp_path / "notes.yaml"
    fleet.write_text(
        FLEET.replace(
            "healthChecks: [{path: /healthz}]",
            "healthChecks: [{path: /healthz, expectIdentity: true}]\n      runtimeIdentity: true",
        )
    )
    assert setpoint("desired", "apply", str(fleet)).exit_code == 0
    assert setpoint("run", "--once").exit_code == 0
    detail = json.loads(setpoint("status", "notes/testing", "--output", "json").stdout)
    ready = next(c for c in detail["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", detail
    reported = emulator.state.env_behind("testing.notes.example.com")
    assert len(reported["SETPOINT_GENERATION"]) == 16
    assert "SETPOINT_IMAGE_DIGEST" not in reported  # a tag names no digest
