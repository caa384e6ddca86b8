"""Issue 27 through the real CLI, over loopback HTTP to the Dokploy emulator (which answers
the health checks for the domains it routes): rollback as a plan, and promotion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.dokploy.emulator import create_app
from reconciler.demo.loopback import serve
from tests.support.cli import Invoke
from tests.support.notes_fleet import notes_fleet

pytestmark = pytest.mark.e2e

KEY = "rollback-e2e-key"
FIRST = "ghcr.io/acme/notes@sha256:" + "1" * 64
SECOND = "ghcr.io/acme/notes@sha256:" + "2" * 64
PROD = "ghcr.io/acme/notes@sha256:" + "0" * 64


@pytest.fixture
def dokploy_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with serve(create_app(api_key=KEY, seed=5, build_seconds=0.05)) as base:
        monkeypatch.setenv("SETPOINT_DOKPLOY_URL", base)
        monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", KEY)
        monkeypatch.setenv("SETPOINT_DEPLOY_POLL_SECONDS", "0.05")
        monkeypatch.setenv("SETPOINT_HEALTH_ROUTE_VIA", base)
        yield base


class Operator:
    def __init__(self, setpoint: Invoke, tmp_path: Path) -> None:
        self.setpoint = setpoint
        self.fleet = tmp_path / "notes.yaml"

    def run(self, *args: str, expect: int = 0) -> str:
        result = self.setpoint(*args)
        assert result.exit_code == expect, result.output
        return result.stdout if expect == 0 else result.stderr

    def declare(self, image: str, gate: str = "true") -> None:
        fleet = notes_fleet(
            image=image, prod_image=PROD, gate=f'{{command: ["{gate}"]}}', apply=None
        )
        self.fleet.write_text(fleet)
        self.run("desired", "apply", str(self.fleet))

    def converge(self, lane: str) -> None:
        plan = json.loads(self.run("plan", "--lane", lane, "-o", "json"))
        if plan["actions"]:
            self.run("apply", plan["plan_id"], "--reason", "test")
        again = json.loads(self.run("plan", "--lane", lane, "-o", "json"))
        assert again["actions"] == []

    def audit(self, event: str) -> list[dict[str, object]]:
        lines = self.run("audit", "export", "--format", "jsonl").splitlines()
        return [r for r in map(json.loads, lines) if r["event"] == event]


def test_rollback_plans_the_previous_generation_and_applying_it_converges(
    setpoint: Invoke, dokploy_url: str, tmp_path: Path
) -> None:
    operator = Operator(setpoint, tmp_path)
    operator.declare(FIRST)
    operator.converge("notes/testing")
    operator.declare(SECOND)
    operator.converge("notes/testing")
    listed = json.loads(operator.run("rollback", "notes/testing", "--list", "-o", "json"))
    assert [(s["generation"], s["running"]) for s in listed] == [(2, SECOND), (1, FIRST)]
    missing = operator.run("rollback", "notes/testing", expect=2)
    assert "needs --reason" in missing

    answer = json.loads(
        operator.run("rollback", "notes/testing", "--reason", "slow start", "-o", "json")
    )
    assert "generation 3 brings back generation 1" in answer["written"]
    plan = answer["plan"]
    assert [a["params"]["image"] for a in plan["actions"] if a["op"] == "set_image"] == [FIRST]
    assert "1 health check(s) passed" in operator.run("apply", plan["plan_id"], "--reason", "r")
    assert (
        json.loads(operator.run("plan", "--lane", "notes/testing", "-o", "json"))["actions"] == []
    )
    [audited] = operator.audit("lane_rolled_back")
    assert audited["data"]["reason"] == "slow start"  # type: ignore[index]


def test_promotion_through_the_cli_refused_then_accepted(
    setpoint: Invoke, dokploy_url: str, tmp_path: Path
) -> None:
    operator = Operator(setpoint, tmp_path)
    operator.declare(FIRST, gate="false")
    args = ("promote", "notes", "--from", "testing", "--to", "prod", "--reason", "release")
    assert "not Ready" in operator.run(*args, expect=1)
    operator.converge("notes/testing")
    assert "gate said no: false: exit code 1" in operator.run(*args, expect=1)
    operator.declare(FIRST, gate="true")
    operator.converge("notes/testing")
    promoted = json.loads(operator.run(*args, "-o", "json"))
    assert f"runs {FIRST} from product:notes/testing" in promoted["written"]
    plan = promoted["plan"]
    operator.run("apply", plan["plan_id"], "--reason", "release")
    status = json.loads(operator.run("status", "-o", "json"))
    prod = next(s for s in status if s["lane"] == "product:notes/prod")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in prod["conditions"])
    [audited] = operator.audit("lane_promoted")
    assert audited["data"]["gate"]["ok"] is True  # type: ignore[index]
    assert len(operator.audit("promotion_refused")) == 2
