"""Setpoint's reconciler: the engine, its kinds and records, and the adapters that drive them.

The adapters (`cli/`, `api/`, `web/`, `demo/`) are thin: they parse, call the engine and
show what it says. `ADAPTER_SURFACE` names all of the engine they may import (a module, or
a whole room ending in a dot); tests/test_architecture.py holds them to it, and to importing
no other adapter. A command that starts another adapter (`setpoint serve` starts the API and
the pages, `setpoint demo` the demo, which starts the API and the pages) goes through
`reconciler.composition`, the one module that puts adapters together.

Nothing is imported here, so `setpoint --help` loads nothing more than the CLI.
"""

from __future__ import annotations

__all__ = ["ADAPTER_SURFACE", "COMPOSITION"]

ADAPTER_SURFACE: tuple[str, ...] = (
    # what a run is made of
    "reconciler.runtime",
    "reconciler.settings",
    "reconciler.errors",
    "reconciler.fleet",
    "reconciler.health",
    "reconciler.secret_sources",
    "reconciler.secret_values",
    # the engine's entry points
    "reconciler.core.planning",  # compute_plan, survey, the kinds of the stored fleet
    "reconciler.core.apply",  # apply_plan and its results
    "reconciler.core.plans",  # Plan, Action, Blocker: data
    "reconciler.core.recovery",  # statuses as shown (interrupted applies found)
    "reconciler.core.adoption",
    "reconciler.core.forgetting",
    "reconciler.core.audit_anchor",
    "reconciler.core.plan_files",
    "reconciler.core.lane_requests",  # a workflow's request and a webhook's lanes
    "reconciler.core.known_good",  # rollback: the known-good states a lane can go back to
    "reconciler.core.promotion",  # promote a verified image from one lane to another
    "reconciler.core.reasons",  # blocker reasons and whether time mends them
    "reconciler.core.outcomes",  # LaneOutcome, ActionResult: what became of a lane, an action
    "reconciler.core.notifications",  # `setpoint notify`: the sinks, a test message
    "reconciler.core.failure_evidence",  # what a provider said of a failed deploy
    "reconciler.loop.engine",
    "reconciler.loop.passes",
    # the kinds: the list (all_kinds, kind_listings) and the contract, never a kind's folder
    "reconciler.kinds",
    "reconciler.kinds.base",
    # the records adapters read, and the few they write through their own functions
    "reconciler.records.",
    # how things look to a person, shared by the terminal and the pages
    "reconciler.presentation.",
)

# Where adapters are put together; the CLI and the demo may import it, nothing else does.
COMPOSITION = "reconciler.composition"
