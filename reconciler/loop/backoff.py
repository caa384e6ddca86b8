"""How long a lane waits before it is tried again, and whether it is tried again at all.

Pure functions (the random draw is passed in). A temporary failure (a provider outage, a
stale plan, a lane another worker holds, an action that failed) backs off exponentially
with full jitter: the wait is drawn uniformly from [0, min(cap, base * 2**attempts)], so
replicas that failed together do not come back together (AWS Architecture Blog, "Exponential
Backoff And Jitter"). A permanent failure (credentials refused, desired state the rules
refuse, objects Setpoint does not own) is not retried: only a change (a new request, the
next scheduled pass) brings the lane back, and its status says why it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from reconciler.core.plans import Blocker, BlockerType
from reconciler.core.reasons import ReasonBook


class FailureClass(StrEnum):
    temporary = "temporary"  # back off and try again
    permanent = "permanent"  # not until something changes


def classify_blocker(blocker: Blocker, reasons: ReasonBook) -> FailureClass:
    """Whether time may clear `blocker`, as its reason's declaration says (the engine's own
    or its kind's); a reason nobody declares waits for a change, never retried blindly."""
    if reasons.temporary(blocker.type):
        return FailureClass.temporary
    return FailureClass.permanent


def classify_refusal(refusal: Blocker) -> FailureClass:
    """An apply that was refused (its plan went stale, a lane or shared target was busy, its
    provider was down) is worth planning again; only refused credentials are not."""
    if refusal.type == BlockerType.credentials_refused:
        return FailureClass.permanent
    return FailureClass.temporary


def classify_blockers(blockers: Iterable[Blocker], reasons: ReasonBook) -> FailureClass:
    """Permanent if any blocker is: retrying cannot get past that one."""
    classes = {classify_blocker(b, reasons) for b in blockers}
    return FailureClass.permanent if FailureClass.permanent in classes else FailureClass.temporary


def retry_delay(
    attempts: int, *, base: float, cap: float, draw: Callable[[float, float], float]
) -> float:
    """Seconds to wait after the `attempts`-th consecutive temporary failure (1 = first).

    `draw(low, high)` is `random.uniform` in production; tests pass a fixed one."""
    ceiling = min(cap, base * 2.0 ** max(0, min(attempts - 1, 30)))
    return draw(0.0, ceiling)
