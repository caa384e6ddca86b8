"""What a runner lane lets run without an operator: exactly what its pool's `allow` names.

The pool's `allow` list is the opt-in, for operators and scheduled passes alike (the diff
turns anything else into a blocker), so a scheduled pass may run what it allows. A lane whose
pool is gone has no opt-in left: an operator applies its teardown.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.plans import Action, Trigger
from reconciler.kinds.runner.ops import ALLOW_FLAG


@dataclass(frozen=True)
class RunnerLanePolicy:
    generation: int | None
    allow: frozenset[str] = frozenset()
    protect: bool = False
    requires_reason: bool = False

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        flag = ALLOW_FLAG.get(action.op)
        if flag is None:
            return None
        if self.generation is None:
            return "the runner pool is no longer desired: an operator must apply its teardown"
        if flag in self.allow:
            return None
        return f"the runner pool does not allow `{flag}` (spec.allow)"
