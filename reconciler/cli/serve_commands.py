"""`setpoint serve`: the HTTP API on uvicorn (and, beside it, the loop)."""

from __future__ import annotations

import typer

from reconciler.cli.output import errors


def serve_api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the API (see docs/operations.md). SIGTERM stops it gracefully: it stops
    accepting, finishes the requests in flight, then exits."""
    import anyio

    from reconciler.api import create_api
    from reconciler.api.server import Companion, run_service
    from reconciler.cli import context
    from reconciler.cli.wiring import open_runtime

    settings = context.settings()
    if settings.api_webhook_secret is None:
        errors.print("[yellow]SETPOINT_API_WEBHOOK_SECRET is not set: webhooks are refused[/]")

    async def main() -> None:
        async with open_runtime(check_config=True) as runtime:
            runtime.actor = f"api:{runtime.actor}"
            app = create_api(runtime)
            # Tasks that run beside the API for as long as it serves, cancelled when it stops.
            companions: list[Companion] = []
            await run_service(app, host, port, companions)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
