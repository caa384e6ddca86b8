"""Who is at the page: an operator token typed into a form, or a signed-in session; and
the sessions themselves, opened at sign-in and ended at sign-out."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.requests import Request

from reconciler.records import operator_tokens, web_sessions
from reconciler.records.database import session_scope
from reconciler.records.operator_tokens import OperatorIdentity
from reconciler.web.guard import SESSION_COOKIE, SESSION_SECONDS, session_cookie, session_id_of
from reconciler.web.site import ReviewSite


def verify_token(engine: Engine, token: str) -> OperatorIdentity | None:
    """The operator a token typed into a form belongs to (the API's tokens)."""
    with session_scope(engine) as session:
        return operator_tokens.verify(session, token.strip())


def signed_in_operator(site: ReviewSite, request: Request) -> OperatorIdentity | None:
    """The operator of a genuine, live session whose token is still live."""
    now = site.clock()  # the runtime's clock: tests move it past a session's end
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session_id = session_id_of(site.form_key, cookie, now.timestamp())
    if session_id is None:
        return None
    with session_scope(site.database) as session:
        return web_sessions.operator_of(session, session_id, now)


def open_session(site: ReviewSite, operator: OperatorIdentity) -> str:
    """A new session for the operator; its cookie's value."""
    now = site.clock()
    with session_scope(site.database) as session:
        row = web_sessions.begin(session, operator.token_id, now, SESSION_SECONDS)
        session_id = row.id
    return session_cookie(site.form_key, session_id, now.timestamp())


def end_session(site: ReviewSite, request: Request) -> None:
    """Sign-out: the session the cookie names ends on the server."""
    now = site.clock()
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session_id = session_id_of(site.form_key, cookie, now.timestamp())
    if session_id is not None:
        with session_scope(site.database) as session:
            web_sessions.end(session, session_id, now)
