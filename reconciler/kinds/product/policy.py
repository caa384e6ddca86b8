"""What a product lane lets run without an operator.

`manual` lanes run nothing unattended. `auto-safe` lanes let a scheduled pass or a
workflow request run safe actions that delete nothing; a deletion always waits for an
operator, however safe it looks. A lane no longer in the desired state is manual.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.plans import Action, Effect, Risk, Trigger


class ApplyPolicy(StrEnum):
    manual = "manual"
    auto_safe = "auto-safe"


@dataclass(frozen=True)
class ProductLanePolicy:
    generation: int | None
    protect: bool
    apply: ApplyPolicy = ApplyPolicy.manual
    requires_reason: bool = False

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        if self.apply is not ApplyPolicy.auto_safe:
            return f"lane has apply policy {self.apply.value}: an operator must apply"
        if action.effect is Effect.delete:
            return f"a {trigger.value} never deletes; an operator must apply this plan"
        if action.risk is not Risk.safe:
            return f"{action.risk.value} action; auto-safe applies only safe actions"
        return None
