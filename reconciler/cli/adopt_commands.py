"""`setpoint adopt`: take an existing Dokploy service into a lane, after showing the effect."""

from __future__ import annotations

import typer

from reconciler.cli.output import console, fail
from reconciler.errors import AdoptionRefused


def adopt_command(
    lane: str = typer.Argument(..., help="The lane to adopt into, e.g. shop/testing."),
    application_id: str | None = typer.Option(
        None, "--application-id", help="Dokploy application id."
    ),
    compose_id: str | None = typer.Option(None, "--compose-id", help="Dokploy compose id."),
    yes: bool = typer.Option(
        False, "--yes", help="Adopt after showing the effect (else only show)."
    ),
) -> None:
    """Adopt an existing, unowned Dokploy service into LANE.

    Shows what the next plan would change once the service is owned; with --yes records the
    ownership (audited). Nothing in Dokploy changes here.
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.adoption import adopt
    from reconciler.kinds.base import AdoptionPreview

    if (application_id is None) == (compose_id is None):
        raise fail("give exactly one of --application-id or --compose-id", code=2)
    service_type, service_id = (
        ("application", application_id) if application_id else ("compose", str(compose_id))
    )

    async def run() -> AdoptionPreview:
        async with open_runtime() as runtime:
            return await adopt(runtime, lane, service_type, str(service_id), record=yes)

    try:
        preview = anyio.run(run)
    except AdoptionRefused as exc:
        raise fail(str(exc)) from None
    claimed = preview.claim
    console.print(f"{service_type} {claimed.name} ({claimed.ref.object_id}) → lane {preview.lane}")
    if not preview.diff.actions:
        console.print("  the service already matches the desired lane: the next plan is empty")
    for action in preview.diff.actions:
        console.print(f"  would {action.op} {action.target}: {action.reason}", highlight=False)
    if yes:
        console.print(
            f"[green]adopted[/]: lane {preview.lane} now owns {service_type} {claimed.ref.object_id}"
        )
    else:
        console.print("nothing recorded; re-run with --yes to adopt")
