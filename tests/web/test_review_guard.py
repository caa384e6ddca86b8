"""The review pages' guards over HTTP, on both databases: headers, signed forms, operator
tokens, sign-in when reading needs a token, and pages turned off."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reconciler.core.plans import Action, Effect, Plan, Risk
from reconciler.demo.loopback import serve
from reconciler.kinds import all_kinds
from reconciler.kinds.product.health import HEALTH, HealthChecks
from reconciler.records import audit, operator_tokens, plan_store
from reconciler.records.database import session_scope
from reconciler.runtime import Runtime, utcnow
from reconciler.settings import Settings
from reconciler.web import (
    PageAccess,
    ReviewSite,
    create_review_app,
    mount_review_pages,
    review_site,
    shared_runtime,
)
from reconciler.web.guard import CONTENT_SECURITY_POLICY
from tests.web.fleet import healthy

FORM_TOKEN = re.compile(r'name="form_token" value="([0-9a-f]+)"')


@asynccontextmanager
async def no_runtime() -> AsyncIterator[Runtime]:
    raise AssertionError("nothing may be applied in these tests")
    yield  # pragma: no cover


def stored_plan(engine: Engine, plan_id: str) -> Plan:
    now = utcnow()
    action = Action(
        id="a1",
        op="deploy",
        effect=Effect.run,
        lane="product:shop/testing",
        target="dokploy:application/shop-testing",
        risk=Risk.safe,
        reason="image changed",
    )
    plan = Plan(
        plan_id=plan_id,
        digest="d" * 64,
        created_at=now,
        expires_at=now + timedelta(hours=1),
        created_by=f"cli:{plan_id}",  # one creator each: a later plan supersedes none
        desired_revision="r1",
        lanes=["product:shop/testing"],
        actions=[action],
        blockers=[],
        fingerprints={},
    )
    plan_store.save(engine, plan)
    return plan


def issue_token(engine: Engine, operator: str = "alice") -> operator_tokens.IssuedToken:
    with session_scope(engine) as session:
        return operator_tokens.issue(session, operator, utcnow())


@contextmanager
def client(engine: Engine, access: PageAccess = PageAccess.open) -> Iterator[httpx.Client]:
    """The pages served on loopback, and a client that keeps cookies as a browser does."""
    site = ReviewSite(database=engine, open_runtime=no_runtime, access=access)
    with serve(create_review_app(site)) as base, httpx.Client(base_url=base) as http:
        yield http


def form_token(http: httpx.Client, path: str) -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text
    found = FORM_TOKEN.search(page.text)
    assert found is not None
    return found.group(1)


def audit_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return len(audit.list_records(session, limit=1000))


def test_every_page_forbids_inline_scripts_and_framing(engine: Engine) -> None:
    stored_plan(engine, "plan-000000000001")
    with client(engine) as http:
        check_headers(http)


def check_headers(http: httpx.Client) -> None:
    for path in ("/lanes", "/plans", "/plans/plan-000000000001", "/audit", "/plans/nope"):
        response = http.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), path  # no inline JS
        assert not re.search(r"\sstyle=|\son[a-z]+=", response.text), path  # nor inline CSS
    assert http.get("/plans/nope").status_code == 404


def test_apply_refuses_a_form_this_site_did_not_make_for_that_plan(engine: Engine) -> None:
    plan = stored_plan(engine, "plan-000000000002")
    other = stored_plan(engine, "plan-000000000003")
    token = issue_token(engine).token
    with client(engine) as http:
        for_other = form_token(http, f"/plans/{other.plan_id}/apply")
        before = audit_count(engine)
        attempts = [
            {"token": token, "digest": plan.digest},  # no form token (a forged form)
            {"token": token, "digest": plan.digest, "form_token": for_other},  # another plan's
        ]
        for fields in attempts:
            refused = http.post(f"/plans/{plan.plan_id}/apply", data=fields)
            assert refused.status_code == 403 and "not made by this site" in refused.text
        genuine = form_token(http, f"/plans/{plan.plan_id}/apply")
        cross_site = http.post(
            f"/plans/{plan.plan_id}/apply",
            data={"token": token, "digest": plan.digest, "form_token": genuine},
            headers={"origin": "https://attacker.example"},
        )
        assert cross_site.status_code == 403
        assert plan_store.load(engine, plan.plan_id)[1] is plan_store.PlanStatus.pending
        assert audit_count(engine) == before


def test_an_unknown_or_revoked_token_changes_nothing(engine: Engine) -> None:
    plan = stored_plan(engine, "plan-000000000004")
    issued = issue_token(engine)
    with session_scope(engine) as session:
        operator_tokens.revoke(session, issued.token_id, utcnow())
    with client(engine) as http:
        genuine = form_token(http, f"/plans/{plan.plan_id}/apply")
        for token in ("spt_guess", issued.token, ""):
            refused = http.post(
                f"/plans/{plan.plan_id}/apply",
                data={"token": token, "digest": plan.digest, "form_token": genuine},
            )
            assert refused.status_code == 403 and "not accepted" in refused.text
            assert issued.token not in refused.text
        assert plan_store.load(engine, plan.plan_id)[1] is plan_store.PlanStatus.pending


def test_confirmation_names_the_plan_its_digest_and_its_destructive_actions(
    engine: Engine,
) -> None:
    plan = stored_plan(engine, "plan-000000000005")
    with client(engine) as http:
        page = http.get(f"/plans/{plan.plan_id}/apply").text
    assert f'id="confirm-plan">{plan.plan_id}<' in page
    assert f'id="confirm-digest">{plan.digest}<' in page
    assert 'id="confirm-destructive" class="">0<' in page


def test_token_mode_sends_readers_to_sign_in_and_revoking_ends_their_session(
    engine: Engine,
) -> None:
    issued = issue_token(engine)
    with client(engine, PageAccess.token) as http:
        first = http.get("/lanes")
        assert first.status_code == 303 and first.headers["location"] == "/sign-in?next=/lanes"
        genuine = form_token(http, "/sign-in")
        wrong = http.post("/sign-in", data={"token": "spt_nope", "form_token": genuine})
        assert wrong.status_code == 403
        signed = http.post(
            "/sign-in",
            data={"token": issued.token, "form_token": genuine, "next": "//evil.example"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/lanes"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and issued.token not in cookie
        assert http.get("/lanes").status_code == 200
        with session_scope(engine) as session:
            operator_tokens.revoke(session, issued.token_id, utcnow())
        assert http.get("/lanes").status_code == 303


def test_pages_turned_off_are_not_served(engine: Engine) -> None:
    app = FastAPI()
    site = ReviewSite(database=engine, open_runtime=no_runtime, access=PageAccess.off)
    assert mount_review_pages(app, site) is False
    with serve(app) as base:
        assert httpx.get(base + "/lanes").status_code == 404


def test_the_pages_mount_beside_an_api_on_the_services_runtime(engine: Engine) -> None:
    """What `setpoint serve` does: the API's app keeps its routes and gains the pages."""
    app = FastAPI()

    @app.get("/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    settings = Settings(review_pages="open")
    runtime = Runtime(
        engine,
        settings,
        "api:test",
        kinds=all_kinds,
        providers={HEALTH: HealthChecks(healthy)},
    )
    assert mount_review_pages(app, review_site(engine, shared_runtime(runtime), settings))
    with serve(app) as base:
        assert httpx.get(base + "/v1/ping").json() == {"pong": "yes"}
        lanes = httpx.get(base + "/lanes")
        assert lanes.status_code == 200 and "Content-Security-Policy" in lanes.headers
        assert httpx.get(base + "/static/review.css").status_code == 200


def test_the_pages_can_live_under_a_prefix(engine: Engine) -> None:
    stored_plan(engine, "plan-000000000006")
    app = FastAPI()
    site = ReviewSite(database=engine, open_runtime=no_runtime, access=PageAccess.open)
    assert mount_review_pages(app, site, prefix="/review")
    with serve(app) as base:
        page = httpx.get(base + "/review/plans/plan-000000000006").text
        links = re.findall(r'(?:href|src|action)="(/[^"]*)"', page)
        assert links and all(link.startswith("/review/") for link in links), links
        assert httpx.get(base + "/review/static/review.js").status_code == 200
        assert httpx.get(base + "/review/").headers["location"] == "/review/lanes"


# -- issue 28 item 10 ------------------------------------------------------------------


def test_a_form_with_more_fields_than_any_of_ours_is_refused_413_not_500(engine: Engine) -> None:
    plan = stored_plan(engine, "plan-000000000007")
    with client(engine) as http:
        genuine = form_token(http, f"/plans/{plan.plan_id}/apply")
        fields = {f"f{n}": "x" for n in range(25)} | {"form_token": genuine}
        for path in (f"/plans/{plan.plan_id}/apply", "/sign-in"):
            refused = http.post(path, data=fields)
            assert refused.status_code == 413, (path, refused.text)
            assert "larger than any form this site makes" in refused.text
            assert refused.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert plan_store.load(engine, plan.plan_id)[1] is plan_store.PlanStatus.pending


def test_every_answer_carries_the_security_headers_not_only_the_pages(engine: Engine) -> None:
    with client(engine, PageAccess.token) as http:
        answers = {
            "not found": http.get("/no-such-page"),
            "static": http.get("/static/review.css"),
            "sign-in redirect": http.get("/lanes"),
            "wrong method": http.put("/sign-in"),
        }
    for what, answer in answers.items():
        assert answer.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("x-frame-options") == "DENY", what
    assert answers["static"].status_code == 200 and answers["not found"].status_code == 404


def _signed_in(http: httpx.Client, token: str) -> str:
    genuine = form_token(http, "/sign-in")
    signed = http.post("/sign-in", data={"token": token, "form_token": genuine})
    assert signed.status_code == 303, signed.text
    found = re.search(r"setpoint_session=([^;]+)", signed.headers["set-cookie"])
    assert found is not None
    return found.group(1)


def _lanes_with(http: httpx.Client, cookie: str) -> int:
    """What a browser holding only this session cookie is answered."""
    url = http.base_url.join("/lanes")
    answer = httpx.get(url, headers={"cookie": f"setpoint_session={cookie}"})
    return answer.status_code


def test_signing_out_ends_the_session_on_the_server(engine: Engine) -> None:
    """A copy of the cookie (a shared machine, a proxy log) signs no one in after sign-out."""
    issued = issue_token(engine)
    with client(engine, PageAccess.token) as http:
        copied = _signed_in(http, issued.token)
        assert _lanes_with(http, copied) == 200
        out = http.post("/sign-out")
        assert out.status_code == 303 and 'setpoint_session=""' in out.headers["set-cookie"]
        assert _lanes_with(http, copied) == 303
        again = _signed_in(http, issued.token)  # the token itself still signs in
        assert again != copied and _lanes_with(http, again) == 200


def test_secure_cookies_follow_our_setting_not_the_forwarded_scheme(engine: Engine) -> None:
    forwarded = {"x-forwarded-proto": "https"}  # loopback is a trusted proxy for uvicorn
    for secure in (True, False):
        site = ReviewSite(
            database=engine, open_runtime=no_runtime, access=PageAccess.token, secure_cookies=secure
        )
        with serve(create_review_app(site)) as base, httpx.Client(base_url=base) as http:
            cookie = http.get("/sign-in", headers=forwarded).headers["set-cookie"]
        assert ("; secure" in cookie.lower()) is secure, cookie


def test_the_secure_flag_setting_and_its_default() -> None:
    from reconciler.web.site import secure_cookies

    assert secure_cookies(Settings(public_url="https://setpoint.example.com")) is True
    assert secure_cookies(Settings(public_url="http://127.0.0.1:8080")) is False
    assert secure_cookies(Settings()) is False
    assert secure_cookies(Settings(web_secure_cookies=True)) is True
    assert (
        secure_cookies(Settings(web_secure_cookies=False, public_url="https://x.example")) is False
    )
