"""`setpoint adopt`: take an existing Dokploy service into a lane, after showing the effect."""

from __future__ import annotations

import anyio
import typer

from reconciler.cli.output import console, fail
from reconciler.cli.runtime import open_runtime
from reconciler.core.adoption import record_adoption
from reconciler.core.planning import load_context
from reconciler.kinds.product.adopt import AdoptionPreview, AdoptionRefused, preview_adoption
from reconciler.kinds.product.kind import ProductLanes
from reconciler.kinds.registry import UnknownLane
from reconciler.runtime import Runtime


async def adopt_service(
    runtime: Runtime, lane: str, service_type: str, service_id: str, *, record: bool
) -> AdoptionPreview:
    """Work out what adopting the service into LANE means, and record it when asked."""
    registry = (await load_context(runtime)).registry
    try:
        (key,) = registry.resolve([lane])
    except UnknownLane as exc:
        raise AdoptionRefused(f"{lane} is not a desired product lane: {exc}") from None
    kind = registry.kind_of(key)
    if not isinstance(kind, ProductLanes):
        raise AdoptionRefused(f"{key} is a {kind.name} lane: only product lanes adopt services")
    preview = await preview_adoption(kind, key, service_type, service_id)
    if record:
        await record_adoption(runtime, preview.lane, preview.claim, preview.would_change)
    return preview


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
    if (application_id is None) == (compose_id is None):
        raise fail("give exactly one of --application-id or --compose-id", code=2)
    service_type, service_id = (
        ("application", application_id) if application_id else ("compose", str(compose_id))
    )

    async def run() -> AdoptionPreview:
        async with open_runtime() as runtime:
            return await adopt_service(runtime, lane, service_type, str(service_id), record=yes)

    try:
        preview = anyio.run(run)
    except AdoptionRefused as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{service_type} {preview.service_name} ({preview.service_id}) → lane {preview.lane}"
    )
    if not preview.diff.actions:
        console.print("  the service already matches the desired lane: the next plan is empty")
    for action in preview.diff.actions:
        console.print(f"  would {action.op} {action.target}: {action.reason}", highlight=False)
    if yes:
        console.print(
            f"[green]adopted[/]: lane {preview.lane} now owns {service_type} {preview.service_id}"
        )
    else:
        console.print("nothing recorded; re-run with --yes to adopt")
