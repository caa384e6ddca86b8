"""Which lane states are told, and as which trigger (issue 27): each state change that
needs a person, keyed so that the same change is one event however often it is seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.core.notices import ENGINE_WORDS, LaneNotices
from reconciler.core.notifications import (
    LaneNewsItem,
    chain_broken_event,
    events_of_pass,
    lane_link,
)
from reconciler.core.plans import BlockerType
from reconciler.core.reasons import BlockerReason
from reconciler.kinds.preview.kind import PREVIEW_NOTICES
from reconciler.kinds.product.reasons import DEPLOY_FAILED
from reconciler.kinds.registry import LaneRegistry
from reconciler.kinds.runner.reasons import HOST_FULL, RUNNER_NOTICES
from reconciler.records.status import (
    LaneCondition,
    LaneStatusRow,
    Reason,
    conditions_of,
    converged,
    degraded,
    pending,
    stalled,
)
from reconciler.runtime import utcnow
from reconciler.settings import Settings

SETTINGS = Settings(database_url="sqlite://", public_url="https://sp.example.test/")


def _row(lane: str, condition: LaneCondition) -> LaneStatusRow:
    return LaneStatusRow(
        lane=lane, conditions=conditions_of(condition, utcnow()), updated_at=utcnow()
    )


@pytest.mark.parametrize(
    ("lane", "condition", "trigger", "notices"),
    [
        ("product:shop/testing", degraded("health check failed"), "lane_degraded", ENGINE_WORDS),
        (
            "product:shop/testing",
            stalled(Reason.apply_failed, "a3 failed"),
            "apply_failed",
            ENGINE_WORDS,
        ),
        ("product:shop/testing", stalled(Reason.interrupted, "gone"), "apply_failed", ENGINE_WORDS),
        (
            "product:shop/testing",
            stalled(BlockerType.credentials_refused, "401"),
            "credentials_refused",
            ENGINE_WORDS,
        ),
        (
            "product:shop/prod",
            stalled(BlockerType.blast_radius_exceeded, "3 > 2"),
            "plan_blocked",
            ENGINE_WORDS,
        ),
        (
            "product:shop/prod",
            stalled(BlockerType.protected_lane, "protect"),
            "plan_blocked",
            ENGINE_WORDS,
        ),
        (
            "product:shop/testing",
            stalled(DEPLOY_FAILED.code, "DeployFailed"),
            "lane_stalled",
            ENGINE_WORDS,
        ),
        ("runner:ci/amd64", stalled(HOST_FULL.code, "full"), "runner_unhealthy", RUNNER_NOTICES),
        # a guard holding back a runner lane is the engine's news, not the runner's
        (
            "runner:ci/amd64",
            stalled(BlockerType.protected_lane, "protect"),
            "plan_blocked",
            RUNNER_NOTICES,
        ),
    ],
)
def test_a_state_that_needs_a_person_is_an_event(
    lane: str, condition: LaneCondition, trigger: str, notices: LaneNotices
) -> None:
    news = [LaneNewsItem(lane, "blocked", "plan-1", notices)]
    (event,) = events_of_pass(SETTINGS, news, {lane: _row(lane, condition)})
    assert event.trigger == trigger and event.lane == lane
    assert lane in event.title and f"setpoint status {lane}" in event.body
    assert event.link == lane_link(SETTINGS, lane)
    assert event.link is not None and event.link.startswith("https://sp.example.test/lanes/")


@pytest.mark.parametrize("condition", [converged(), pending("2 action(s) in plan p")])
def test_a_lane_that_is_fine_or_waits_for_an_operator_is_no_event(
    condition: LaneCondition,
) -> None:
    lane = "product:shop/testing"
    news = [LaneNewsItem(lane, "awaiting_operator", "p")]
    assert events_of_pass(SETTINGS, news, {lane: _row(lane, condition)}) == []


def test_the_same_change_has_the_same_key_and_a_new_one_another() -> None:
    lane = "product:shop/testing"
    row = _row(lane, degraded("503"))
    news = [LaneNewsItem(lane, "degraded", "")]
    first = events_of_pass(SETTINGS, news, {lane: row})
    again = events_of_pass(SETTINGS, news, {lane: row})
    assert [e.key for e in first] == [e.key for e in again]
    later = LaneStatusRow(
        lane=lane, conditions=[dict(c) for c in row.conditions], updated_at=utcnow()
    )
    later.conditions[0]["lastTransitionTime"] = "2030-01-01T00:00:00+00:00"
    (moved,) = events_of_pass(SETTINGS, news, {lane: later})
    assert moved.key != first[0].key


def test_a_torn_down_preview_and_a_broken_chain_are_events() -> None:
    lane = "preview:shop/pr-7"
    news = [LaneNewsItem(lane, "applied", "plan-9", PREVIEW_NOTICES)]
    (gone,) = events_of_pass(SETTINGS, news, {})
    assert gone.trigger == "preview_torn_down" and "plan-9" in gone.body
    assert gone.title == f"Setpoint: {lane}: preview torn down"
    # A removal the operator asked for in a kind with no word for it is not news.
    assert events_of_pass(SETTINGS, [LaneNewsItem("product:x/y", "applied", "p")], {}) == []
    # A failed removal of a preview is not a torn-down preview.
    failed = [LaneNewsItem(lane, "apply_failed", "plan-9", PREVIEW_NOTICES)]
    assert events_of_pass(SETTINGS, failed, {}) == []
    broken = chain_broken_event("the audit chain does not verify (record 12 altered)")
    assert broken.trigger == "audit_chain_broken" and broken.lane is None
    assert "setpoint audit verify" in broken.body


def test_without_a_public_url_there_is_no_link() -> None:
    assert lane_link(Settings(database_url="sqlite://"), "product:shop/testing") is None


@dataclass
class _WordlessKind:
    """Just enough of a kind for the registry: a name, no lanes, no words of its own."""

    name: str
    reasons: dict[str, BlockerReason] = field(default_factory=dict)

    def lanes(self) -> list[str]:
        return []


@dataclass
class _PreviewLikeKind(_WordlessKind):
    notices: LaneNotices = PREVIEW_NOTICES


def test_each_lane_is_told_in_its_own_kinds_words_even_once_removed() -> None:
    """The registry answers for a lane by its key's kind, so a preview whose anchor is gone
    (no longer one of the kind's lanes) is still told as a torn-down preview."""
    kinds: list[Any] = [_WordlessKind("toy"), _PreviewLikeKind("preview")]
    registry = LaneRegistry(kinds)
    assert registry.notices_of("preview:shop/pr-gone") is PREVIEW_NOTICES
    assert registry.notices_of("toy:a") is ENGINE_WORDS
    assert registry.notices_of("unknown:b") is ENGINE_WORDS
