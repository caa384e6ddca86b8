"""The words the terminal and the review pages share, so a lane or a plan reads the same in
both: risk words (mildest first), a lane's state, a change's value, a plan's risk summary."""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.plans import Plan

# The risk words, mildest first, with their terminal styles (the pages style them by name).
RISK_STYLE = {"safe": "green", "disruptive": "yellow", "destructive": "bold red"}
STATE_STYLE = {"Stalled": "bold red", "Reconciling": "yellow", "Ready": "green"}


def value_text(value: object) -> str:
    """A change's before or after as a person reads it."""
    if value is None:
        return "∅"
    return value if isinstance(value, str) else json.dumps(value)


def risk_summary(plan: Plan) -> str:
    """`2 safe, 1 destructive`: how many actions of each risk, mildest first."""
    risks = {r: sum(1 for a in plan.actions if a.risk.value == r) for r in RISK_STYLE}
    return ", ".join(f"{n} {r}" for r, n in risks.items() if n)


def speaking_condition(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The condition that explains the lane: Stalled or Reconciling when True, else Ready."""
    flags = {c["type"]: c for c in conditions}
    return next(
        (flags[t] for t in ("Stalled", "Reconciling") if flags.get(t, {}).get("status") == "True"),
        flags.get("Ready", {}),
    )


def lane_state(conditions: list[dict[str, Any]]) -> str:
    """One word for the lane: Stalled, Reconciling, Ready, Degraded or NotReady."""
    flags = {c["type"]: c for c in conditions}
    for state in ("Stalled", "Reconciling", "Ready"):
        if flags.get(state, {}).get("status") == "True":
            return state
    return "Degraded" if flags.get("Ready", {}).get("reason") == "Degraded" else "NotReady"
