"""`setpoint serve`: the HTTP API on uvicorn (and, beside it, the loop)."""

from __future__ import annotations

import typer


def serve_api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    interval: float = typer.Option(
        300.0, "--interval", min=5.0, help="Seconds between the loop's scheduled passes."
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="-vv adds debug lines (never secrets)."
    ),
) -> None:
    """Serve the API, and the reconcile loop beside it (see docs/operations.md).

    Needs SETPOINT_DATABASE_URL (where the service's state lives). Logs one line per event
    on stderr (SETPOINT_LOG_FORMAT: logfmt or json): where it listens, the loop's start, each
    pass and each operation. SIGTERM
    stops it gracefully: the API stops accepting and finishes the requests in flight, then
    the loop stops claiming and lets in-flight work finish within its grace period."""
    import dataclasses

    import anyio

    from reconciler.cli import context, service_log
    from reconciler.cli.wiring import open_runtime
    from reconciler.composition import Companion, create_service, run_service
    from reconciler.loop.engine import LoopEngine

    context.require_explicit_database("serve")
    settings = context.settings()
    service_log.configure(service_log.LogFormat(settings.log_format), verbose)
    if settings.api_webhook_secret is None:
        service_log.log.warning(
            "SETPOINT_API_WEBHOOK_SECRET is not set: webhooks are refused",
            extra={"fields": {"event": "config_warning"}},
        )

    async def main() -> None:
        async with open_runtime(check_config=True) as runtime:
            actor = runtime.actor
            runtime.actor = f"api:{actor}"
            app = create_service(runtime)
            loop = LoopEngine(
                dataclasses.replace(runtime, actor=f"scheduler:{actor}"),
                on_pass=service_log.PassLogger(),
            )
            service_log.loop_started(interval, settings.loop_workers)
            # Tasks that run beside the API for as long as it serves, cancelled when it stops.
            companions: list[Companion] = [lambda: loop.run_beside(interval)]
            async with loop.exclusive():  # on SQLite: a second loop is refused before listening
                await run_service(app, host, port, companions)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
