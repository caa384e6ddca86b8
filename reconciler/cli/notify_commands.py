"""`setpoint notify ...`: try the operator's notification sinks, and read what was sent."""

from __future__ import annotations

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json

app = typer.Typer(
    help=(
        "Notifications: what went wrong, sent to the sinks in SETPOINT_NOTIFY_SINKS (apprise "
        "URLs, or signed+https:// for Setpoint's signed JSON webhook)."
    ),
    no_args_is_help=True,
)


@app.command("test")
def notify_test(output: OutputFormat = OUTPUT_OPTION) -> None:
    """Send a test message to every sink now; exit 1 when one did not take it."""
    import anyio

    from reconciler.cli.wiring import default_actor
    from reconciler.core.notifications import send_test
    from reconciler.kinds import all_kinds
    from reconciler.runtime import Runtime

    settings = context.settings()
    if not settings.notify_sinks:
        raise fail("no notification sink is configured: set SETPOINT_NOTIFY_SINKS")
    runtime = Runtime(
        database=context.ready_engine(),
        settings=settings,
        actor=default_actor(),
        kinds=all_kinds,
    )
    try:
        results = anyio.run(send_test, runtime)
    except ValueError as exc:  # a sink the settings describe wrongly (never its URL)
        raise fail(str(exc)) from None
    if output is OutputFormat.json:
        print_json([{"sink": s, "state": state, "answer": said} for s, state, said in results])
    else:
        for sink, state, said in results:
            colour = "green" if state == "delivered" else "red"
            console.print(f"{escape(sink)}: [{colour}]{state}[/] {escape(said)}")
    if any(state != "delivered" for _, state, _ in results):
        raise typer.Exit(1)


@app.command("list")
def notify_list(
    lane: str | None = typer.Option(None, "--lane", help="Only this lane's notifications."),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """The newest notifications: trigger, lane, sink, state, tries and answer."""
    from reconciler.records import notifications
    from reconciler.records.database import session_scope

    with session_scope(context.ready_engine()) as session:
        rows = notifications.recent(session, lane=lane, limit=limit)
    found = [
        {
            "id": row.id,
            "sink": row.sink,
            "trigger": row.trigger,
            "lane": row.lane,
            "title": row.title,
            "state": row.state,
            "attempts": row.attempts,
            "createdAt": row.created_at.isoformat(),
            "deliveredAt": row.delivered_at.isoformat() if row.delivered_at else None,
            "answer": row.answer,
        }
        for row in rows
    ]
    if output is OutputFormat.json:
        print_json(found)
        return
    if not found:
        console.print("no notification was sent")
        return
    for row in rows:
        console.print(
            f"{row.created_at:%Y-%m-%d %H:%M:%S} {escape(row.sink)} {row.trigger} "
            f"{escape(row.lane or '-')}: {row.state} after {row.attempts} try(s)"
        )
