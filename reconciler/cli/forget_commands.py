"""`setpoint forget LANE`: after Dokploy lost a lane's objects, drop its ownership records."""

from __future__ import annotations

import typer

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json


def forget(
    lane: str = typer.Argument(..., help="Lane key, e.g. product:shop/prod (or shop/prod)."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Forget a lane whose objects are gone from Dokploy: drop its ownership records (audited).

    Only when every object Setpoint owns for the lane is read by id and Dokploy answers
    "not found"; otherwise nothing changes and the reason is printed. The next plan then
    creates again what is still desired. See docs/operations.md.
    """
    import anyio

    from reconciler.cli.wiring import open_runtime
    from reconciler.core.forgetting import ForgottenLane, forget_lane
    from reconciler.errors import ForgetRefused

    async def run() -> ForgottenLane:
        async with open_runtime() as runtime:
            return await forget_lane(runtime, lane)

    try:
        forgotten = anyio.run(run)
    except ForgetRefused as exc:
        raise fail(str(exc)) from None
    if output is OutputFormat.json:
        print_json({"lane": forgotten.lane, "forgotten": list(forgotten.objects)})
        return
    console.print(
        f"forgot {forgotten.lane}: {len(forgotten.objects)} ownership record(s) dropped, each "
        "object confirmed gone from Dokploy",
        highlight=False,
    )
    for item in forgotten.objects:
        console.print(f"  {item}", highlight=False)
    console.print("the next plan creates again what is still desired", highlight=False)
