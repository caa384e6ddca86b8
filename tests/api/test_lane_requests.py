"""A request that carries what its lane's kind takes (a preview deployed on request gets the
head whose image was built): the kind checks it, and what it changes is stored in the
transaction that records the operation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.github.emulator import EmulatorState
from providers.github.emulator.oidc_issuer import DEFAULT_ISSUER
from providers.github.oidc import OidcVerifier
from reconciler.composition import create_service
from reconciler.loop.passes import reconcile_pass
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import session_scope
from reconciler.records.desired import get_object
from reconciler.records.oidc_replays import DatabaseReplayStore
from reconciler.runtime import Runtime, utcnow
from tests.api.conftest import AUDIENCE, Mint, add_grant, audit_events, bearer
from tests.support.previews import store_notes

PREVIEW = "/v1/lanes/preview/notes/pr-1/reconcile"


@pytest.fixture
async def preview_client(
    previews: Runtime,
    github_emulator: FastAPI,
    engine: Engine,
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=github_emulator)) as jwks:
        verifier = OidcVerifier(
            DEFAULT_ISSUER,
            AUDIENCE,
            http=jwks,
            replay_store=DatabaseReplayStore(engine, clock=utcnow),
        )
        app = create_service(previews, verifier=verifier)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            yield http


async def test_a_preview_on_request_records_the_head_with_the_operation(
    preview_client: httpx.AsyncClient,
    previews: Runtime,
    github: EmulatorState,
    engine: Engine,
    mint: Mint,
    tmp_path: Path,
) -> None:
    store_notes(engine, tmp_path, deploy="on-request")
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)  # discovery finds the pull request: the lane awaits a request
    add_grant(engine, "preview:notes/*")

    without_sha = await preview_client.post(PREVIEW, headers=bearer(mint()))
    asked = await preview_client.post(
        PREVIEW, headers=bearer(mint()), json={"params": {"sha": pr.head_sha}}
    )

    assert without_sha.status_code == 422, without_sha.text
    assert without_sha.json()["type"].endswith("/request_refused")
    assert "say which head" in without_sha.json()["detail"]
    assert asked.status_code == 202, asked.text
    [requested] = audit_events(engine, AuditEvent.reconcile_requested)
    assert requested.data["changed"] == ["PreviewAnchor/notes-pr-1"]
    assert requested.data["operation"] == asked.json()["id"]
    with session_scope(engine) as session:
        anchor = get_object(session, "PreviewAnchor", "notes-pr-1")
    assert anchor is not None and anchor.source_file == "workflow"


async def test_parameters_a_kind_does_not_take_and_unknown_lanes_are_refused(
    preview_client: httpx.AsyncClient, engine: Engine, mint: Mint
) -> None:
    add_grant(engine, "*")

    product = await preview_client.post(
        "/v1/lanes/product/shop/testing/reconcile",
        headers=bearer(mint()),
        json={"params": {"sha": "a" * 40}},
    )
    unknown = await preview_client.post(
        "/v1/lanes/product/shop/nowhere/reconcile", headers=bearer(mint())
    )

    assert product.status_code == 422 and "take no request parameters" in product.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown_lane")
