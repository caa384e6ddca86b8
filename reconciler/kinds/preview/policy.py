"""What a scheduled pass may do to a preview lane on its own."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.plans import Action, Effect, Risk, Trigger


@dataclass(frozen=True)
class PreviewLanePolicy:
    """Previews follow their pull request without an operator: created, updated and
    deployed by any trigger; torn down when the product's policy says `teardown: auto`."""

    generation: int | None
    teardown: str = "manual"
    protect: bool = False
    requires_reason: bool = False  # a preview follows its PR; nobody is asked why

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        if action.effect is Effect.delete:
            if self.teardown == "auto":
                return None
            return "the preview policy says `teardown: manual`: an operator must apply"
        if action.risk is not Risk.safe:
            return f"{action.risk.value} action on a preview; an operator must apply"
        return None
