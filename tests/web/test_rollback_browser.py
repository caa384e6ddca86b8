"""Issue 27 in a real Chromium: a lane's page lists its known-good states and offers a
rollback, which writes the generation as the operator and shows its plan; applying that plan
from its page brings the old image back."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from playwright.sync_api import Browser, Page

from reconciler.core.apply import apply_plan
from reconciler.records import audit
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from tests.web.browser import chromium
from tests.web.fleet import EXAMPLES, ReviewFleet, review_fleet

pytestmark = pytest.mark.e2e

LANE = "product:shop/testing"
NEWER = "ghcr.io/acme/shop@sha256:" + "e" * 64


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def fleet(browser: Browser, tmp_path: Path) -> Iterator[ReviewFleet]:
    with review_fleet(tmp_path) as built:
        yield built


def converge(fleet: ReviewFleet) -> None:
    async def run() -> None:
        async with fleet.runtime() as runtime:
            plan = fleet.plan(LANE)
            if plan.actions:
                assert (await apply_plan(runtime, plan.plan_id)).status == "applied"

    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, run).result()
    assert fleet.plan(LANE).actions == []  # converged: the state is remembered


def test_the_lane_page_rolls_back_to_a_known_good_state_as_a_plan(
    browser: Browser, fleet: ReviewFleet, tmp_path: Path
) -> None:
    converge(fleet)
    newer = tmp_path / "shop.yaml"
    newer.write_text(
        (EXAMPLES / "shop.yaml").read_text().replace("ghcr.io/acme/shop:main", NEWER, 1)
    )
    fleet.declare(newer)
    converge(fleet)

    page: Page = browser.new_context().new_page()
    page.goto(f"{fleet.base_url}/lanes/product/shop/testing")
    states = page.locator("#known-good").inner_text()
    assert "generation 2" in states and NEWER in states and "ghcr.io/acme/shop:main" in states
    page.get_by_role("link", name="Roll back…").click()
    page.fill("#reason", "the new image fails checkout")
    page.fill("#token", "spt_not-a-token")
    page.get_by_role("button", name="Write the rollback and show its plan").click()
    assert "not accepted" in page.locator("main").inner_text()
    assert fleet.plan(LANE).actions == []  # a refused form wrote nothing

    page.go_back()
    page.reload()
    page.fill("#reason", "the new image fails checkout")
    page.fill("#token", fleet.token)
    page.get_by_role("button", name="Write the rollback and show its plan").click()
    page.wait_for_url("**/plans/*")
    plan_id = page.url.rsplit("/", 1)[1]
    assert "set_image" in page.locator("main").inner_text()
    assert "ghcr.io/acme/shop:main" in page.locator("main").inner_text()

    page.get_by_role("link", name="Apply this plan…").click()
    page.fill("#token", fleet.token)
    page.get_by_role("button", name=f"Apply plan {plan_id}").click()
    assert page.locator("#outcome").inner_text() == f"applied plan {plan_id} as operator:alice"
    assert fleet.plan(LANE).actions == []
    with session_scope(fleet.database) as session:
        [record] = audit.list_records(session, event=AuditEvent.lane_rolled_back)
    assert record.actor == "operator:alice" and record.lane == LANE
    assert (record.data or {})["reason"] == "the new image fails checkout"
