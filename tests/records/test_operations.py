"""Operations: reserved before any effect, found again by idempotency key, never changed
once finished."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from reconciler.errors import IdempotencyConflict
from reconciler.records import operations
from reconciler.records.database import session_scope
from reconciler.records.operations import OperationPhase, OperationRequest, OperationStatus

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _request(
    key: str | None = "build-41", digest: str = "d1", who: str = "repo:1"
) -> OperationRequest:
    return OperationRequest(
        lane="product:shop/testing", requester=who, body_digest=digest, idempotency_key=key
    )


def test_same_key_and_body_is_the_same_operation(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = operations.reserve(session, _request(), T0)
    with session_scope(engine) as session:
        again = operations.reserve(session, _request(), T0)
    assert first.created and not again.created
    assert again.operation.id == first.operation.id


def test_same_key_with_another_body_is_a_conflict(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = operations.reserve(session, _request(), T0)
    with pytest.raises(IdempotencyConflict) as refused, session_scope(engine) as session:
        operations.reserve(session, _request(digest="d2"), T0)
    assert refused.value.operation_id == first.operation.id


def test_keys_belong_to_their_requester(engine: Engine) -> None:
    with session_scope(engine) as session:
        mine = operations.reserve(session, _request(who="repo:1"), T0)
        theirs = operations.reserve(session, _request(who="repo:2", digest="d2"), T0)
    assert theirs.created and theirs.operation.id != mine.operation.id


def test_finished_operations_never_change_again(engine: Engine) -> None:
    with session_scope(engine) as session:
        op = operations.reserve(session, _request(key=None), T0).operation
        assert [o.id for o in operations.open_for_lane(session, op.lane)] == [op.id]
        operations.advance(
            session, [op.id], T0, status=OperationStatus.running, phase=OperationPhase.planning
        )
        operations.advance(
            session,
            [op.id],
            T0,
            status=OperationStatus.succeeded,
            phase=OperationPhase.done,
            plan_id="plan_1",
            result={"outcome": "converged"},
        )
        operations.advance(
            session, [op.id], T0, status=OperationStatus.failed, phase=OperationPhase.done
        )
    with session_scope(engine) as session:
        stored = operations.get(session, op.id)
        assert operations.open_for_lane(session, op.lane) == []
    assert stored is not None
    assert (stored.status, stored.plan_id, stored.result) == (
        "succeeded",
        "plan_1",
        {"outcome": "converged"},
    )


def test_operator_tokens_verify_until_revoked_and_are_stored_only_as_digests(
    engine: Engine,
) -> None:
    from reconciler.records import operator_tokens

    with session_scope(engine) as session:
        issued = operator_tokens.issue(session, "alice", T0)
    with session_scope(engine) as session:
        who = operator_tokens.verify(session, issued.token)
        assert operator_tokens.verify(session, issued.token + "x") is None
        stored = operator_tokens.listed(session)
    assert who is not None and who.actor == "operator:alice"
    assert issued.token not in repr([vars(row) for row in stored])
    with session_scope(engine) as session:
        assert operator_tokens.revoke(session, issued.token_id, T0)
    with session_scope(engine) as session:
        assert operator_tokens.verify(session, issued.token) is None
