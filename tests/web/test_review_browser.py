"""The plan review pages in a real Chromium (issue 16, "must show"): the lanes page, a
plan's field diffs, apply with a token until the lanes are Ready, a stale plan refused
with the engine's message, and no secret value in any page served. One browser and one
fleet for the module; the screenshots in docs/images are taken here."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from reconciler.core.plans import Plan
from reconciler.demo.loopback import serve
from reconciler.presentation.words import value_text
from reconciler.records import audit, plan_store
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.web import PageAccess, ReviewSite, create_review_app
from tests.support.secret_scan import assert_no_secrets
from tests.web.browser import chromium
from tests.web.fleet import EXAMPLES, RUNNER_LANE, ReviewFleet, review_fleet

pytestmark = pytest.mark.e2e

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: docs/images when SETPOINT_UPDATE_SCREENSHOTS=1 (to refresh
    the documentation's pictures), else a temporary folder, so a test run leaves the
    checkout as it found it."""
    if os.environ.get("SETPOINT_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / name))
    assert (folder / name).stat().st_size > 0


PRODUCT_LANES = {
    "product:shop/testing",
    "product:shop/prod",
    "product:ledger/testing",
    "product:ledger/prod",
    "product:docs-site/testing",
    "product:docs-site/prod",
}
LINK = re.compile(r'(?:href|src)="([^"]+)"')
SAFE_GREEN = "rgb(26, 127, 55)"  # --safe in review.css


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def fleet(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewFleet]:
    with review_fleet(tmp_path_factory.mktemp("review")) as built:
        yield built


@pytest.fixture(scope="module")
def first_plan(fleet: ReviewFleet) -> Plan:
    return fleet.plan()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, console_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()

    def keep(message: ConsoleMessage) -> None:
        # A CSP violation or a script error is reported here; a 404 the crawl asked for is
        # reported too, and checked by its status instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            console_errors.append(message.text)

    opened.on("console", keep)
    yield opened
    context.close()


def lane_states(page: Page) -> dict[str, str]:
    rows = page.locator("#lanes tbody tr[data-lane]")
    pairs = rows.evaluate_all("rows => rows.map(r => [r.dataset.lane, r.dataset.state])")
    return dict(pairs)


def apply_from_page(page: Page, fleet: ReviewFleet, plan_id: str, token: str) -> None:
    page.goto(f"{fleet.base_url}/plans/{plan_id}")
    page.get_by_role("link", name="Apply this plan…").click()
    page.fill("#token", token)
    page.get_by_role("button", name=f"Apply plan {plan_id}").click()


def test_lanes_page_shows_every_lane_with_its_conditions(
    page: Page, fleet: ReviewFleet, first_plan: Plan, console_errors: list[str], images: Path
) -> None:
    page.goto(f"{fleet.base_url}/lanes")
    states = lane_states(page)
    assert states.keys() >= PRODUCT_LANES and RUNNER_LANE in states
    shop = page.locator('tr[data-lane="product:shop/testing"]').inner_text()
    assert "ChangesPending" in shop and f"an operator to apply plan {first_plan.plan_id}" in shop
    runner = page.locator(f'tr[data-lane="{RUNNER_LANE}"]').inner_text()
    assert "Reconciling" in runner and "one is busy" in runner

    page.get_by_label("Kind").select_option("runner")  # review.js submits on change
    page.wait_for_url("**/lanes?kind=runner**")
    assert list(lane_states(page)) == [RUNNER_LANE]
    page.goto(f"{fleet.base_url}/lanes?product=shop&condition=NotReady")
    assert set(lane_states(page)) == {"product:shop/testing", "product:shop/prod"}

    page.goto(f"{fleet.base_url}/lanes")
    page.keyboard.press("Tab")  # the first stop is the skip link, then real links
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing runs off the side
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.get_by_role("link", name="product:shop/testing").is_visible()
    screenshot(page, images, "web-lanes-phone.png")
    assert console_errors == []


def test_plan_page_shows_each_fields_change_and_secrets_as_fingerprints(
    page: Page, fleet: ReviewFleet, first_plan: Plan, console_errors: list[str], images: Path
) -> None:
    page.goto(f"{fleet.base_url}/plans/{first_plan.plan_id}")
    assert page.locator("#digest").inner_text() == first_plan.digest
    action, change = next(
        (a, c)
        for a in first_plan.actions
        if a.lane == "product:shop/testing"
        for c in a.changes
        if c.field == "env.LOG_LEVEL"
    )
    row = page.locator(f'article[id="{action.id}"] tr.change[data-field="env.LOG_LEVEL"]')
    assert row.locator("td.before").inner_text() == value_text(change.before)
    assert row.locator("td.after").inner_text() == value_text(change.after) == "debug"

    badge = page.locator(f'article[id="{action.id}"] .risk').first
    assert badge.inner_text() == action.risk.value == "safe"  # by word
    assert badge.evaluate("b => getComputedStyle(b).color") == SAFE_GREEN  # and by colour

    secret = page.locator(f'article[id="{action.id}"] tr.change[data-field="env.DATABASE_URL"]')
    assert "secret" in secret.locator("th").inner_text()
    assert secret.locator("td.after").inner_text().startswith("hmac-sha256:")
    assert page.locator("pre.diff .diff-add").count() > 0  # the compose file's diff

    page.set_viewport_size({"width": 1280, "height": 1400})  # the facts and the first lane
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, images, "web-plan.png")
    assert console_errors == []


def test_apply_with_a_token_turns_the_lanes_ready(
    page: Page,
    fleet: ReviewFleet,
    first_plan: Plan,
    caplog: pytest.LogCaptureFixture,
    images: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    page.goto(f"{fleet.base_url}/plans/{first_plan.plan_id}/apply")
    assert page.locator("#confirm-plan").inner_text() == first_plan.plan_id
    assert page.locator("#confirm-digest").inner_text() == first_plan.digest
    assert page.locator("#confirm-destructive").inner_text() == "0"

    apply_from_page(page, fleet, first_plan.plan_id, "spt_not-a-token")
    assert "not accepted" in page.locator("main").inner_text()
    assert plan_store.load(fleet.database, first_plan.plan_id)[1] is plan_store.PlanStatus.pending

    apply_from_page(page, fleet, first_plan.plan_id, fleet.token)
    outcome = page.locator("#outcome").inner_text()
    assert outcome == f"applied plan {first_plan.plan_id} as operator:alice"
    page.get_by_role("link", name="See the lanes").click()
    states = lane_states(page)
    assert {lane: states[lane] for lane in PRODUCT_LANES} == dict.fromkeys(PRODUCT_LANES, "Ready")
    screenshot(page, images, "web-lanes.png")

    with session_scope(fleet.database) as session:
        started = audit.list_records(
            session, plan_id=first_plan.plan_id, event=AuditEvent.apply_started
        )
    assert [r.actor for r in started] == ["operator:alice"]
    assert "review page: plan" in caplog.text  # the pages log the apply, not its secrets
    assert_no_secrets(caplog.text, [*fleet.secrets.values(), fleet.token])


def test_a_stale_plan_is_refused_with_the_engines_message(
    page: Page, fleet: ReviewFleet, tmp_path: Path
) -> None:
    shop = (EXAMPLES / "shop.yaml").read_text()
    edited = tmp_path / "shop.yaml"
    edited.write_text(shop.replace("LOG_LEVEL: debug", "LOG_LEVEL: warning"))
    fleet.declare(edited)
    stale = fleet.plan("product:shop/testing")
    edited.write_text(shop.replace("LOG_LEVEL: debug", "LOG_LEVEL: error"))
    fleet.declare(edited)  # the lane moved on after the plan was computed

    apply_from_page(page, fleet, stale.plan_id, fleet.token)
    shown = page.locator("#refusal").inner_text()
    with session_scope(fleet.database) as session:
        (refused,) = audit.list_records(
            session, plan_id=stale.plan_id, event=AuditEvent.apply_refused
        )
    # The words `setpoint apply` prints (cli/render.render_apply) for the audited refusal.
    assert shown == f"refused {refused.data['blocker']}: {refused.data['message']}"
    assert refused.data["message"] == (
        "desired state changed since the plan for product:shop/testing; compute a new plan"
    )
    assert refused.actor == "operator:alice"
    assert plan_store.load(fleet.database, stale.plan_id)[1] is plan_store.PlanStatus.stale


def test_a_long_apply_runs_on_while_the_plan_page_follows_it(
    page: Page, fleet: ReviewFleet, tmp_path: Path
) -> None:
    """No request is held open for a long apply: past the wait, the browser is sent to the
    plan, which reloads itself until the apply is done."""
    shop = (EXAMPLES / "shop.yaml").read_text()
    edited = tmp_path / "shop.yaml"
    edited.write_text(shop.replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    fleet.declare(edited)
    plan = fleet.plan("product:shop/testing")
    impatient = ReviewSite(
        database=fleet.database,
        open_runtime=fleet.runtime,
        access=PageAccess.open,
        apply_wait_seconds=0.0,
    )
    with serve(create_review_app(impatient)) as base:
        page.goto(f"{base}/plans/{plan.plan_id}/apply")
        page.fill("#token", fleet.token)
        page.get_by_role("button", name=f"Apply plan {plan.plan_id}").click()
        assert page.url == f"{base}/plans/{plan.plan_id}"
        expect(page.locator("#plan-status")).to_have_text("applied", timeout=30_000)
    with session_scope(fleet.database) as session:
        finished = audit.list_records(
            session, plan_id=plan.plan_id, event=AuditEvent.apply_finished
        )
    assert [r.actor for r in finished] == ["operator:alice"]


def test_no_secret_value_in_any_page_served(
    page: Page, fleet: ReviewFleet, first_plan: Plan, console_errors: list[str]
) -> None:
    """Every page and file a link reaches from the top pages, the plans and every audit
    record included (fetched through the browser's own HTTP client: rendering each of
    several hundred pages would add nothing the tests above do not check)."""
    start = ["/lanes", "/plans", "/audit?limit=1000", "/previews", "/runners", "/plans?lane="]
    queue, seen, fingerprints = list(start), set(start), 0
    while queue:
        path = queue.pop()
        response = page.request.get(fleet.base_url + path)
        assert response.status == 200, path  # every link leads somewhere
        html = response.text()
        assert_no_secrets(html, fleet.secrets.values())
        fingerprints += html.count("hmac-sha256:")
        for href in LINK.findall(html):
            link = urldefrag(unescape(href)).url
            if link.startswith("/") and link not in seen:
                seen.add(link)
                queue.append(link)
    assert len(seen) > 50 and fingerprints > 0  # it read plans, with their secret fields
    assert {"/static/review.css", "/static/review.js"} <= seen
    page.goto(f"{fleet.base_url}/audit")
    assert console_errors == []


def test_a_lane_shows_the_last_plan_that_acted_on_it_and_says_ready_once(
    page: Page, fleet: ReviewFleet, first_plan: Plan, images: Path
) -> None:
    """A later whole-fleet plan that changes nothing on ledger/prod is not its last plan."""
    later = fleet.plan()
    assert not later.lane_actions("product:ledger/prod")
    page.goto(f"{fleet.base_url}/lanes")
    row = page.locator('tr[data-lane="product:ledger/prod"]')
    assert row.locator('td[data-label="Last plan"] a').inner_text() == first_plan.plan_id
    assert row.get_attribute("data-state") == "Ready"
    assert row.inner_text().count("observed state matches desired state") == 1


def test_the_runners_page_shows_each_runners_github_status(
    page: Page, fleet: ReviewFleet, images: Path
) -> None:
    """What the last pass saw on GitHub, from the records: online and busy, or offline."""
    page.goto(f"{fleet.base_url}/runners")
    row = page.locator("table.runners tbody tr").filter(has_text=RUNNER_LANE)
    assert row.locator("td.github-status div").all_inner_texts() == [
        "shop-ci-amd64-1: online, busy",
        "shop-ci-amd64-2: offline",
    ]
    header = [h.inner_text() for h in page.locator("table.runners thead th").all()]
    assert header[:3] == ["Lane", "State", "GitHub"]
    screenshot(page, images, "web-runners.png")


def test_superseded_and_expired_plans_offer_no_apply(
    page: Page, fleet: ReviewFleet, tmp_path: Path, images: Path
) -> None:
    shop = (EXAMPLES / "shop.yaml").read_text()
    edited = tmp_path / "shop.yaml"
    edited.write_text(shop.replace("LOG_LEVEL: debug", "LOG_LEVEL: notice"))
    fleet.declare(edited)
    older = fleet.plan("product:shop/testing")
    newer = fleet.plan()  # looks at shop/testing again: the one to review now
    assert plan_store.load(fleet.database, older.plan_id)[1] is plan_store.PlanStatus.pending

    page.goto(f"{fleet.base_url}/plans/{older.plan_id}")
    assert page.locator("#plan-status").inner_text() == "superseded"
    assert page.get_by_role("link", name="Apply this plan…").count() == 0
    page.goto(f"{fleet.base_url}/plans")
    row = page.locator(f'tr[data-plan="{older.plan_id}"]')
    assert row.locator(".status").inner_text() == "superseded"
    screenshot(page, images, "web-plans.png")

    page.goto(f"{fleet.base_url}/plans/{newer.plan_id}")
    assert page.locator("#plan-status").inner_text() == "pending"
    assert page.get_by_role("link", name="Apply this plan…").count() == 1
    later = ReviewSite(
        database=fleet.database,
        open_runtime=fleet.runtime,
        access=PageAccess.open,
        clock=lambda: newer.expires_at + timedelta(seconds=1),
    )
    with serve(create_review_app(later)) as base:
        page.goto(f"{base}/plans/{newer.plan_id}")
        assert page.locator("#plan-status").inner_text() == "expired"
        assert page.get_by_role("link", name="Apply this plan…").count() == 0


def test_a_compose_diff_is_single_spaced(page: Page, fleet: ReviewFleet, first_plan: Plan) -> None:
    page.goto(f"{fleet.base_url}/plans/{first_plan.plan_id}")
    lines = page.locator("pre.diff").first.locator("span")
    first, second = lines.nth(0).bounding_box(), lines.nth(1).bounding_box()
    assert first is not None and second is not None
    assert second["y"] - first["y"] < 1.5 * first["height"]


def test_the_audit_list_says_what_happened_where_and_by_whom(
    page: Page, fleet: ReviewFleet, first_plan: Plan, images: Path
) -> None:
    page.goto(f"{fleet.base_url}/audit?plan={first_plan.plan_id}&limit=1000")
    summaries = page.locator("table.audit td.summary").all_inner_texts()
    assert "apply started by operator:alice" in summaries
    assert any(
        s.startswith("action result on product:shop/testing by operator:alice: ") for s in summaries
    )
    page.goto(f"{fleet.base_url}/audit")
    screenshot(page, images, "web-audit.png")


def test_previews_link_their_pull_request_and_address(
    page: Page, fleet: ReviewFleet, tmp_path: Path, images: Path
) -> None:
    anchor = tmp_path / "anchor.yaml"
    anchor.write_text(
        "apiVersion: setpoint.dev/v1\nkind: PreviewAnchor\nmetadata:\n  name: shop-pr-7\n"
        "spec:\n  product: shop\n  repository: acme/shop\n  number: 7\n"
        f"  headSha: {'a1' * 20}\n  labels: [preview]\n  openedAt: {int(time.time())}\n"
    )
    fleet.declare(anchor)
    page.goto(f"{fleet.base_url}/previews")
    pull = page.get_by_role("link", name="acme/shop#7")
    assert pull.get_attribute("href") == "https://github.com/acme/shop/pull/7"
    address = page.locator("a.preview-url")
    assert address.get_attribute("href") == "https://pr-7.preview.shop.example.com/"
    screenshot(page, images, "web-previews.png")


def test_the_sign_in_page_offers_no_sign_out(page: Page, fleet: ReviewFleet) -> None:
    guarded = ReviewSite(
        database=fleet.database, open_runtime=fleet.runtime, access=PageAccess.token
    )
    with serve(create_review_app(guarded)) as base:
        page.goto(f"{base}/lanes")
        assert urldefrag(page.url).url.startswith(f"{base}/sign-in")
        assert page.get_by_role("button", name="Sign out").count() == 0
        page.fill("#token", fleet.token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/lanes")
        assert page.get_by_role("button", name="Sign out").count() == 1
