"""`setpoint plan`, `setpoint apply` and `setpoint status`: thin adapters over the engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, fail, print_json
from reconciler.errors import PlanNotFound, UnknownLane

if TYPE_CHECKING:
    from reconciler.records.status import LaneStatusRow

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
WIDE_HELP = "Show every column, however wide the table gets."


def plan(
    lane: list[str] = typer.Option(
        [], "--lane", "-l", help="Only this lane (repeatable), e.g. shop/testing."
    ),
    output: OutputFormat = OUTPUT_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Also write the plan JSON to this file."),
    detailed_exitcode: bool = typer.Option(
        False,
        "--detailed-exitcode",
        help="Exit 0 when nothing changes, 2 when the plan has actions, 1 on error or blockers.",
    ),
) -> None:
    """Compute a plan: what would change to reach the desired state. Changes nothing.

    The plan is stored; apply it with `setpoint apply PLAN_ID`.
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.planning import compute_plan
    from reconciler.core.plans import Plan
    from reconciler.presentation.console import render_plan

    if out is not None and not out.parent.is_dir():
        raise fail(f"cannot write the plan to {out}: there is no folder {out.parent}")

    async def run() -> Plan:
        progress = lambda m: errors.print(f"[dim]{m}[/]")  # noqa: E731
        async with open_runtime(progress=progress, check_config=True) as runtime:
            return await compute_plan(runtime, lane or None)

    try:
        result = anyio.run(run)
    except UnknownLane as exc:
        raise fail(str(exc), code=EXIT_ERROR) from None
    data = result.model_dump(mode="json")
    if out is not None:
        _write_plan(out, result.plan_id, result.model_dump_json(indent=2) + "\n")
    if output is OutputFormat.json:
        print_json(data)
    else:
        render_plan(console, result)
        if result.actions and not result.blockers:
            console.print(f"apply with: [bold]setpoint apply {result.plan_id}[/]")
    if detailed_exitcode:
        if result.blockers:
            raise typer.Exit(EXIT_ERROR)
        raise typer.Exit(EXIT_CHANGES if result.actions else EXIT_NO_CHANGES)
    if result.blockers:
        raise typer.Exit(EXIT_ERROR)


def _write_plan(out: Path, plan_id: str, text: str) -> None:
    try:
        out.write_text(text)
    except OSError as exc:
        raise fail(
            f"plan {plan_id} is stored (`setpoint apply {plan_id}`), but could not be written "
            f"to {out}: {exc.strerror or type(exc).__name__}"
        ) from None


MAX_REASON_CHARS = 500


def given_reason(text: str | None) -> str | None:
    """The operator's reason, trimmed; one line of error when it is too long to keep."""
    from reconciler.cli.output import fail

    if text is None or not text.strip():
        return None
    if len(text) > MAX_REASON_CHARS:
        raise fail(f"--reason is {len(text)} characters; at most {MAX_REASON_CHARS}", code=2)
    return text.strip()


def apply(
    plan_ref: str = typer.Argument(
        ...,
        metavar="PLAN_ID|FILE",
        help="The id `setpoint plan` printed, or the file `plan --out` wrote.",
    ),
    allow_destroy: int = typer.Option(
        0, "--allow-destroy", min=0, help="Allow this many deletions past the blast-radius guard."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why: written into every audit record of the apply."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Apply a stored plan. Refused if it is stale, blocked or expired; audited either way.

    Given the file `plan --out` wrote, it applies the stored plan the file names, once the
    file's digest matches both its own content and the stored plan.
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.apply import ApplyResult, apply_plan
    from reconciler.core.audit_anchor import anchor
    from reconciler.presentation.console import render_apply
    from reconciler.records.database import in_thread

    # Deploys can take minutes: a live spinner shows which action is running meanwhile.
    spinner = console.status("checking the plan", spinner="dots")

    def progress(message: str) -> None:
        if output is OutputFormat.text:
            console.print(f"[cyan]→[/] {message}", highlight=False)
            spinner.update(f"running {message}")

    plan_id = _plan_id_of(plan_ref)

    async def run() -> ApplyResult:
        async with open_runtime(progress=progress, check_config=True) as runtime:
            try:
                return await apply_plan(
                    runtime, plan_id, allow_destroy=allow_destroy, reason=given_reason(reason)
                )
            finally:  # refused or applied, the trail grew: anchor it (when configured)
                anchored = await in_thread(
                    anchor, runtime.database, runtime.settings, runtime.now()
                )
                if anchored is not None and anchored.problem is not None:
                    console.print(f"[yellow]warning:[/] {anchored.problem}", highlight=False)

    try:
        if output is OutputFormat.text:
            with spinner:
                result = anyio.run(run)
        else:
            result = anyio.run(run)
    except PlanNotFound:
        raise fail(f"no plan {plan_id!r}; run `setpoint plan` first") from None
    if output is OutputFormat.json:
        print_json(
            {
                "plan_id": result.plan_id,
                "status": result.status,
                "refusal": result.refusal.model_dump(mode="json") if result.refusal else None,
                "actions": [vars(a) for a in result.actions],
            }
        )
    else:
        render_apply(console, result)
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)


def _plan_id_of(plan_ref: str) -> str:
    """A plan id as given, or the id of the stored plan a `plan --out` file holds."""
    path = Path(plan_ref)
    if not (path.suffix == ".json" or path.is_file()):
        return plan_ref
    from reconciler.core.plan_files import stored_plan_of_file
    from reconciler.errors import PlanFileRejected

    try:
        return stored_plan_of_file(context.ready_engine(), path)
    except PlanFileRejected as exc:
        raise fail(str(exc)) from None
    except PlanNotFound as exc:
        raise fail(f"{path} names plan {exc}, which is not stored in this database") from None


def status(
    lane: str | None = typer.Argument(
        None, help="One lane in full (`shop/testing` or `product:shop/testing`)."
    ),
    output: OutputFormat = OUTPUT_OPTION,
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Show each lane's conditions (Ready, Reconciling, Stalled) and last applied plan; with
    LANE, that lane's health verdict, its last failed deploy's evidence and notifications."""
    from reconciler.core.recovery import shown_statuses
    from reconciler.presentation.console import render_status
    from reconciler.runtime import utcnow

    rows = shown_statuses(context.ready_engine(), utcnow())
    if lane is not None:
        _lane_status(rows, lane, output)
        return
    if output is OutputFormat.json:
        print_json(
            [
                {
                    "lane": r.lane,
                    "conditions": r.conditions,
                    "observedGeneration": r.observed_generation,
                    "lastAppliedPlan": r.last_applied_plan,
                    "updatedAt": r.updated_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    if not rows:
        console.print("no lane has been planned yet: run `setpoint plan`")
        return
    render_status(console, rows, wide=wide)


def _lane_status(rows: list[LaneStatusRow], name: str, output: OutputFormat) -> None:
    from reconciler.presentation.lane_detail import find_lane, lane_detail, render_lane_detail

    row = find_lane(rows, name)
    if row is None:
        raise fail(f"no status for lane {name!r}; `setpoint status` lists the lanes")
    engine = context.ready_engine()
    if output is OutputFormat.json:
        print_json(lane_detail(engine, row))
        return
    render_lane_detail(console, engine, row)
