"""`setpoint run`: the reconcile loop (`reconciler.loop.engine`), or one pass with --once."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, print_json
from reconciler.presentation.tables import Column, Role, fit_table

if TYPE_CHECKING:
    from reconciler.core.outcomes import LaneOutcome
    from reconciler.loop.passes import LaneResult, PassReport


@cache
def _outcome_styles() -> dict[LaneOutcome, str]:
    from reconciler.core.outcomes import LaneOutcome  # the engine loads once a command runs

    return {
        LaneOutcome.converged: "green",
        LaneOutcome.degraded: "red",
        LaneOutcome.applied: "green",
        LaneOutcome.applying: "yellow",
        LaneOutcome.awaiting_operator: "yellow",
        LaneOutcome.waiting: "yellow",
        LaneOutcome.blocked: "red",
        LaneOutcome.refused: "red",
        LaneOutcome.apply_failed: "bold red",
        LaneOutcome.rolled_back: "yellow",
    }


def styled_outcome(outcome: LaneOutcome) -> str:
    return f"[{_outcome_styles()[outcome]}]{outcome}[/]"


def run(
    once: bool = typer.Option(False, "--once", help="Run one pass and exit (for cron)."),
    interval: float = typer.Option(300.0, "--interval", min=5.0, help="Seconds between passes."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run the reconcile loop: every lane on a schedule, requested lanes as they come.

    Each lane gets its own plan. A scheduled plan is applied only when the lane's policy is
    `auto-safe` and every action is safe; everything else waits for an operator. Several
    replicas may share a PostgreSQL database; on SQLite one process runs the loop.
    SIGTERM stops it cleanly. Needs SETPOINT_DATABASE_URL (where the loop's state lives).
    With --once, one pass; exits 1 if any lane is blocked or failed.
    """
    import anyio

    from reconciler.cli import context
    from reconciler.cli.wiring import open_runtime
    from reconciler.core.outcomes import LaneOutcome
    from reconciler.errors import LoopAlreadyRunning
    from reconciler.loop.engine import LoopEngine

    if not once:  # a long-running loop keeps state others share; one pass may use the default
        context.require_explicit_database("run")

    async def loop() -> PassReport | None:
        async with open_runtime() as runtime:
            runtime.actor = f"scheduler:{runtime.actor}"
            engine = LoopEngine(runtime, on_pass=lambda report: show(report, output))
            if not once and output is OutputFormat.text:
                engine.on_result = show_lane
            if once:
                return await engine.run_once()
            await engine.run_until_signalled(interval)
            return None

    try:
        report = anyio.run(loop)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except LoopAlreadyRunning as exc:
        errors.print(f"[red]error[/]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if report is None:
        return
    show(report, output)
    failed = (LaneOutcome.blocked, LaneOutcome.apply_failed, LaneOutcome.refused)
    if any(report.count(outcome) for outcome in failed):
        raise typer.Exit(1)


def show_lane(result: LaneResult) -> None:
    """One line as each lane is worked (the loop's progress between pass tables)."""
    plan = f" {result.plan_id}" if result.plan_id else ""
    console.print(
        f"{escape(result.lane)} {styled_outcome(result.outcome)}{plan} {escape(result.detail)}",
        highlight=False,
    )


PASS_COLUMNS = (
    Column("LANE", Role.identifier),
    Column("OUTCOME"),
    Column("PLAN", Role.identifier),
    Column("DETAIL", Role.flexible),
)


def show(report: PassReport, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json([vars(r) for r in report.lanes])
        return
    cells = [
        [escape(r.lane), styled_outcome(r.outcome), r.plan_id, escape(r.detail)]
        for r in report.lanes
    ]
    fit_table(console, PASS_COLUMNS, cells, wide=False, wide_option=None).print(console, wide=False)
