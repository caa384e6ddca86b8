"""Who is calling, and may they: bearer tokens, grants, and the audit of every refusal.

Two kinds of bearer token are accepted. An operator token (`spt_…`, `setpoint tokens
create`) may do anything the API offers. Anything else is taken as a GitHub Actions OIDC
token: verified (issuer, audience, RS256, expiry, once only, through the replay store the
replicas share), then held to the grants in the database, deny by default. Every refusal is
counted and audited (`api_denied`: the reason and the route, never the token); a source's
repeats within a minute are summed up in one record (`refusals.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import NoReturn

from fastapi import Request

from providers.github.oidc import GitHubIdentity, OidcRejected
from reconciler.api.refusals import record_refusal
from reconciler.api.service_state import ApiState, api_state, client_source
from reconciler.errors import ApiRefused
from reconciler.records import grants, operator_tokens
from reconciler.records.audit_events import AuditEvent
from reconciler.records.database import in_thread, session_scope
from reconciler.records.grants import GrantAction, GrantSubject
from reconciler.records.operator_tokens import OperatorIdentity

UNVERIFIED_ACTOR = "api:unverified-caller"
MAX_TOKEN_CHARS = 8192  # far past any real OIDC token; a bigger one is not parsed at all


@dataclass(frozen=True)
class Caller:
    requester: str  # stable across a workflow's tokens: operations are found again by it
    actor: str  # how the audit trail names it
    operator: OperatorIdentity | None = None
    workflow: GitHubIdentity | None = None


def _operator_caller(identity: OperatorIdentity) -> Caller:
    return Caller(requester=identity.actor, actor=identity.actor, operator=identity)


def _workflow_caller(identity: GitHubIdentity) -> Caller:
    requester = f"github:{identity.repository_id}:{identity.workflow_ref}"
    actor = f"workflow:{identity.repository}:{identity.workflow_ref}"
    if identity.run_id is not None:  # the run, so the audit trail leads to its log
        actor += f" run {identity.run_id}"
    return Caller(requester=requester[:300], actor=actor[:200], workflow=identity)


async def deny(
    request: Request,
    status: int,
    reason: str,
    detail: str,
    *,
    actor: str = UNVERIFIED_ACTOR,
    lane: str | None = None,
    shown_as: str | None = None,
) -> NoReturn:
    """Audit and count the refusal, then raise it as a problem (of kind `shown_as`, when
    the true reason must not be told: someone else's operation reads as no operation)."""
    state = api_state(request)
    state.metrics.denials.labels(reason.split(":")[0]).inc()
    await record_refusal(
        state.engine,
        state.refusals,
        AuditEvent.api_denied,
        source=client_source(request),
        actor=actor,
        lane=lane,
        data={"reason": reason, "method": request.method, "path": request.url.path[:300]},
    )
    title = "unauthenticated" if status == 401 else HTTPStatus(status).phrase.lower()
    raise ApiRefused(status, shown_as or reason.split(":")[0], title, detail)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


async def authenticate(request: Request) -> Caller:
    """The verified caller; refuses (401, audited) a missing, bad, expired or replayed token."""
    state = api_state(request)
    token = _bearer(request)
    if token is None:
        await deny(request, 401, "missing_token", "send a bearer token (Authorization: Bearer …)")
    if token.startswith(operator_tokens.TOKEN_PREFIX):
        identity = await in_thread(_verify_operator, state, token)
        if identity is None:
            await deny(request, 401, "bad_operator_token", "the operator token is not valid")
        return _operator_caller(identity)
    try:
        workflow = await state.verifier.verify(token)
    except OidcRejected as refused:
        if refused.reason == "jwks_unavailable":  # our trouble, not the caller's: try later
            await deny(request, 503, "oidc_jwks_unavailable", "cannot check tokens right now")
        await deny(request, 401, f"oidc_{refused.reason}", f"token refused: {refused.reason}")
    return _workflow_caller(workflow)


def _verify_operator(state: ApiState, token: str) -> OperatorIdentity | None:
    with session_scope(state.engine) as session:
        return operator_tokens.verify(session, token)


async def require_operator(request: Request) -> Caller:
    caller = await authenticate(request)
    if caller.operator is None:
        await deny(
            request,
            403,
            "operator_token_required",
            "this needs an operator token",
            actor=caller.actor,
        )
    return caller


async def authorize(request: Request, caller: Caller, lane: str, action: GrantAction) -> None:
    """Operators may do anything; a workflow needs a grant for `action` on `lane`."""
    if caller.workflow is None:
        return
    identity = caller.workflow
    subject = GrantSubject(
        identity.repository_id, identity.workflow_ref, identity.ref, identity.environment
    )
    state = api_state(request)
    if await in_thread(_allowed, state, subject, lane, action):
        return
    if action is GrantAction.apply and await in_thread(
        _allowed, state, subject, lane, GrantAction.plan
    ):
        reason, detail = "apply_not_granted", f"the grant for {lane} allows plan only"
    else:
        reason, detail = "no_grant", f"no grant lets {identity.repository} {action} {lane}"
    await deny(request, 403, reason, detail, actor=caller.actor, lane=lane)


def _allowed(state: ApiState, subject: GrantSubject, lane: str, action: GrantAction) -> bool:
    with session_scope(state.engine) as session:
        return grants.allowing(session, subject, lane, action) is not None
