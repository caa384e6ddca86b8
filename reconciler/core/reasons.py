"""Why a lane is blocked, and whether time can mend it: the engine's reasons and the kinds'.

The engine raises its own reasons (`plans.BlockerType`: a stale plan, the blast-radius
guard, a busy lane, refused credentials...) and knows whether waiting mends each. A kind
raises reasons of its own vocabulary (a product's route conflict, a runner pool's full
host) and declares each one as a `BlockerReason` in its `reasons` table, so the loop knows
whether to back off and try again or to wait for an operator, and the pages can say what
an operator can do. A stored blocker keeps its reason as a plain string, so a plan stored
by an older Setpoint (or by a kind this deployment does not run) still loads and renders;
a reason nobody declares is treated as one that needs an operator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.core.plans import BlockerType
from reconciler.errors import ReasonClash


@dataclass(frozen=True)
class BlockerReason:
    """One reason a lane can be blocked. `temporary`: time alone may clear it (a provider
    answers again, a busy lane is given back), so the loop backs off and tries again; else
    only a change clears it (an operator, an edit), and the loop does not retry. `advice`:
    what an operator can do about it, one or two sentences for the plan page."""

    code: str
    temporary: bool
    advice: str = ""


def reason_table(*reasons: BlockerReason) -> Mapping[str, BlockerReason]:
    return {reason.code: reason for reason in reasons}


# What time mends among the engine's own reasons. Refused credentials are the preflight
# failure waiting does not mend (Invariant 8: a gate, not a retry storm).
_ENGINE_TEMPORARY = frozenset(
    {
        BlockerType.observation_incomplete,
        BlockerType.preflight_failed,
        BlockerType.stale_plan,
        BlockerType.lane_busy,
        BlockerType.target_busy,
    }
)

ENGINE_REASONS: Mapping[str, BlockerReason] = reason_table(
    *(BlockerReason(code.value, code in _ENGINE_TEMPORARY) for code in BlockerType)
)


@dataclass(frozen=True)
class ReasonBook:
    """Every reason this deployment can raise: the engine's plus its kinds' declarations."""

    reasons: Mapping[str, BlockerReason]

    def get(self, code: str) -> BlockerReason | None:
        return self.reasons.get(code)

    def temporary(self, code: str) -> bool:
        """Whether time may clear `code`; an undeclared reason needs an operator."""
        reason = self.reasons.get(code)
        return reason is not None and reason.temporary

    def codes(self) -> list[str]:
        return list(self.reasons)


def reason_book(declared: Iterable[tuple[str, Mapping[str, BlockerReason]]]) -> ReasonBook:
    """The engine's reasons and each kind's (`(kind name, its table)`). Raises ReasonClash
    for a kind that redeclares an engine reason, or declares a reason another kind declares
    differently (two kinds on one machinery, a product and its previews, share theirs)."""
    merged = dict(ENGINE_REASONS)
    declared_by: dict[str, str] = {}
    for kind, table in declared:
        for code, reason in table.items():
            if code in ENGINE_REASONS:
                raise ReasonClash(f"kind {kind} declares reason {code}, which the engine owns")
            if code in merged and merged[code] != reason:
                raise ReasonClash(
                    f"kinds {declared_by[code]} and {kind} declare reason {code} differently"
                )
            merged[code] = reason
            declared_by.setdefault(code, kind)
    return ReasonBook(merged)
