"""The lane policy of the toy kinds tests define to exercise the kind contract: every action
allowed to every trigger, nothing protected, no reason asked for."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.core.plans import Action, Trigger


@dataclass(frozen=True)
class AllowingPolicy:
    generation: int | None = 1
    protect: bool = False
    requires_reason: bool = False

    def allows(self, action: Action, trigger: Trigger) -> str | None:
        return None
