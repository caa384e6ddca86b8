"""The records behind the API's access checks: the replay store replicas share, and grants."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from reconciler.records import grants
from reconciler.records.database import session_scope
from reconciler.records.grants import GrantAction, GrantSubject
from reconciler.records.oidc_replays import (
    KEEP_PAST_EXPIRY,
    DatabaseReplayStore,
    OidcReplay,
    claim_jti,
)
from reconciler.runtime import utcnow
from tests.api.conftest import add_grant

WORKFLOW = "acme/shop/.github/workflows/build.yml@refs/heads/main"


async def test_a_token_id_is_accepted_once_across_replicas(engine: Engine) -> None:
    replica_a = DatabaseReplayStore(engine, clock=utcnow)
    replica_b = DatabaseReplayStore(engine, clock=utcnow)
    expires = utcnow() + timedelta(minutes=5)

    assert await replica_a.claim("jti-1", expires) is True
    assert await replica_b.claim("jti-1", expires) is False
    assert await replica_b.claim("jti-2", expires) is True


def test_expired_token_ids_are_pruned(engine: Engine) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        claim_jti(session, "old", now - KEEP_PAST_EXPIRY - timedelta(minutes=1), now)
        claim_jti(session, "new", now, now)
    with session_scope(engine) as session:
        claim_jti(session, "later", now, now + timedelta(seconds=1))
        left = session.exec(select(col(OidcReplay.jti))).all()
    assert sorted(left) == ["later", "new"]


def subject(ref: str = "refs/heads/main", environment: str | None = None) -> GrantSubject:
    return GrantSubject(101, WORKFLOW, ref, environment)


def allows(engine: Engine, who: GrantSubject, lane: str, action: GrantAction) -> bool:
    with session_scope(engine) as session:
        return grants.allowing(session, who, lane, action) is not None


def test_grants_match_every_field_and_deny_by_default(engine: Engine) -> None:
    lane = "product:shop/prod"
    assert not allows(engine, subject(), lane, GrantAction.plan)
    add_grant(engine, "product:shop/*", ref="refs/tags/v*", environment="production")

    assert not allows(engine, subject(), lane, GrantAction.plan)  # a branch, not a tag
    assert not allows(engine, subject("refs/tags/v1.2"), lane, GrantAction.plan)  # no environment
    assert allows(engine, subject("refs/tags/v1.2", "production"), lane, GrantAction.plan)
    assert not allows(engine, subject("refs/tags/v1.2", "production"), lane, GrantAction.apply)


def test_a_removed_grant_allows_nothing(engine: Engine) -> None:
    grant_id = add_grant(engine, "*", allow_apply=True)
    assert allows(engine, subject(), "runner:ci", GrantAction.apply)
    with session_scope(engine) as session:
        assert grants.remove_grant(session, grant_id) is not None
    assert not allows(engine, subject(), "runner:ci", GrantAction.plan)
