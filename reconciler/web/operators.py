"""Who is at the page: an operator token typed into a form, or a signed-in session."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.requests import Request

from reconciler.records import operator_tokens
from reconciler.records.database import session_scope
from reconciler.records.operator_tokens import OperatorIdentity, OperatorToken
from reconciler.web.guard import SESSION_COOKIE, session_token_id
from reconciler.web.site import ReviewSite


def verify_token(engine: Engine, token: str) -> OperatorIdentity | None:
    """The operator a token typed into a form belongs to (the API's tokens)."""
    with session_scope(engine) as session:
        return operator_tokens.verify(session, token.strip())


def signed_in_operator(site: ReviewSite, request: Request) -> OperatorIdentity | None:
    """The operator of a genuine, unexpired session whose token is still live."""
    token_id = session_token_id(site.form_key, request.cookies.get(SESSION_COOKIE, ""))
    if token_id is None:
        return None
    with session_scope(site.engine) as session:
        row = session.get(OperatorToken, token_id)
        if row is None or row.revoked_at is not None:
            return None  # revoking a token ends its sessions at once
        return OperatorIdentity(row.id, row.operator)
