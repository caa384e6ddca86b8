"""`setpoint rollback` and `setpoint promote`: write a known-good or verified state as a new
desired generation (audited), then plan it. Nothing outside changes until the plan is applied."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.cli.reconcile_commands import given_reason

if TYPE_CHECKING:
    from reconciler.core.plans import Plan

REASON_HELP = "Why: kept in the audit record (required)."
STORE_NOTE = (
    "the stored desired state changed, not your YAML files: edit them too, or the next "
    "`setpoint desired apply` of them asks for the old state again"
)


def rollback(
    lane: str = typer.Argument(..., help="Lane key or name, e.g. shop/testing."),
    to: int | None = typer.Option(
        None,
        "--to",
        min=1,
        help="The generation to bring back (default: the newest earlier "
        "known-good state that differs from today's).",
    ),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
    list_states: bool = typer.Option(
        False, "--list", help="Only list the lane's known-good states; change nothing."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Bring a lane back to a known-good state: a new desired generation, and its plan.

    The generation is written (audited, with the reason) and planned; apply the plan with
    `setpoint apply PLAN_ID`. See docs/operations.md, "When a change goes wrong".
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.known_good import RolledBack
    from reconciler.core.known_good import rollback as write_rollback
    from reconciler.core.planning import compute_plan
    from reconciler.errors import RollbackRefused, UnknownLane

    if list_states:
        _list(lane, output)
        return
    why = given_reason(reason)
    if why is None:
        raise fail("a rollback needs --reason: it is kept in the audit record", code=2)

    async def run() -> tuple[RolledBack, Plan]:
        async with open_runtime(check_config=True) as runtime:
            rolled = await write_rollback(runtime, lane, reason=why, to_generation=to)
            return rolled, await compute_plan(runtime, [rolled.lane])

    try:
        rolled, plan = anyio.run(run)
    except (RollbackRefused, UnknownLane) as exc:
        raise fail(str(exc)) from None
    headline = (
        f"{rolled.lane}: desired generation {rolled.generation} brings back generation "
        f"{rolled.restored.generation} ({rolled.restored.running or 'no image'})"
    )
    _show(headline, plan, output)


def _list(lane: str, output: OutputFormat) -> None:
    from reconciler.cli import context
    from reconciler.records import known_good

    key = lane if ":" in lane else f"product:{lane}"
    states = known_good.history(context.ready_engine(), key)
    if output is OutputFormat.json:
        print_json(
            [
                {
                    "lane": s.lane,
                    "generation": s.generation,
                    "running": s.running,
                    "verdict": s.verdict,
                    "recorded_at": s.recorded_at.isoformat(),
                }
                for s in states
            ]
        )
        return
    if not states:
        console.print(f"{escape(key)} has no known-good state yet", highlight=False)
    for s in states:
        console.print(
            f"generation {s.generation}  {escape(s.running or '-')}  known good since "
            f"{s.recorded_at:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


def promote(
    product: str = typer.Argument(..., help="The product, e.g. shop."),
    source: str = typer.Option(..., "--from", help="The lane whose verified image is promoted."),
    target: str = typer.Option(..., "--to", help="The lane that gets it, e.g. prod."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Promote the image digest a Ready lane runs and verified into another lane, and plan it.

    Refused unless the source lane is Ready on an image digest that passed its health
    checks, and the product's promotion gate (if any) passes; audited either way, with the
    gate's verdict. Apply the plan with `setpoint apply PLAN_ID`.
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.planning import compute_plan
    from reconciler.core.promotion import Promoted
    from reconciler.core.promotion import promote as write_promotion
    from reconciler.errors import PromotionRefused, UnknownLane

    why = given_reason(reason)
    if why is None:
        raise fail("a promotion needs --reason: it is kept in the audit record", code=2)

    async def run() -> tuple[Promoted, Plan]:
        async with open_runtime(check_config=True) as runtime:
            done = await write_promotion(runtime, product, source, target, reason=why)
            return done, await compute_plan(runtime, [done.target])

    try:
        promoted, plan = anyio.run(run)
    except (PromotionRefused, UnknownLane) as exc:
        raise fail(f"promotion refused: {exc}") from None
    headline = (
        f"{promoted.target}: desired generation {promoted.generation} runs {promoted.image} "
        f"from {promoted.source} (gate: {promoted.gate.detail})"
    )
    _show(headline, plan, output)


def _show(headline: str, plan: Plan, output: OutputFormat) -> None:
    from reconciler.presentation.console import render_plan

    if output is OutputFormat.json:
        print_json({"written": headline, "plan": plan.model_dump(mode="json")})
        return
    console.print(escape(headline), highlight=False)
    render_plan(console, plan)
    if plan.actions and not plan.blockers:
        console.print(f"apply with: [bold]setpoint apply {plan.plan_id}[/]")
    console.print(f"[dim]{STORE_NOTE}[/]")
