"""`setpoint serve`: the HTTP API on uvicorn (and, beside it, the loop)."""

from __future__ import annotations

import typer

from reconciler.cli.output import errors


def serve_api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    interval: float = typer.Option(
        300.0, "--interval", min=5.0, help="Seconds between the loop's scheduled passes."
    ),
) -> None:
    """Serve the API, and the reconcile loop beside it (see docs/operations.md). SIGTERM
    stops it gracefully: the API stops accepting and finishes the requests in flight, then
    the loop stops claiming and lets in-flight work finish within its grace period."""
    import dataclasses

    import anyio

    from reconciler.api import create_api
    from reconciler.api.server import Companion, run_service
    from reconciler.cli import context
    from reconciler.cli.wiring import open_runtime
    from reconciler.loop.engine import LoopEngine

    settings = context.settings()
    if settings.api_webhook_secret is None:
        errors.print("[yellow]SETPOINT_API_WEBHOOK_SECRET is not set: webhooks are refused[/]")

    async def main() -> None:
        async with open_runtime(check_config=True) as runtime:
            actor = runtime.actor
            runtime.actor = f"api:{actor}"
            app = create_api(runtime)
            loop = LoopEngine(dataclasses.replace(runtime, actor=f"scheduler:{actor}"))
            # Tasks that run beside the API for as long as it serves, cancelled when it stops.
            companions: list[Companion] = [lambda: loop.run_beside(interval)]
            async with loop.exclusive():  # on SQLite: a second loop is refused before listening
                await run_service(app, host, port, companions)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
