"""`setpoint emulator ...`: serve a provider emulator on loopback for local work and tests."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Serve the built-in Dokploy or GitHub emulator on loopback.", no_args_is_help=True
)

LOOPBACK = "127.0.0.1"


@app.command("dokploy")
def dokploy(
    port: int = typer.Option(3000, help="TCP port on 127.0.0.1."),
    api_key: str = typer.Option(
        ...,
        "--api-key",
        envvar="SETPOINT_EMULATOR_API_KEY",
        help="Key clients must send in x-api-key.",
    ),
    seed: int = typer.Option(0, help="Seed for generated ids and app-name suffixes."),
    build_seconds: float = typer.Option(
        0.2, "--build-seconds", min=0, help="How long each deployment takes to build."
    ),
    latency: float = typer.Option(
        0.0, "--latency", min=0, help="Seconds added to every API call's answer."
    ),
    parallel_builds: bool = typer.Option(
        False,
        "--parallel-builds",
        help="Build every service's deployment at once, instead of one build at a time per "
        "Dokploy server as the real Dokploy does.",
    ),
) -> None:
    """Serve a Dokploy v0.30 emulator at http://127.0.0.1:PORT/api.

    It also answers, on any other path, for the domains it routes to a deployed service, as
    Traefik would: set SETPOINT_HEALTH_ROUTE_VIA=http://127.0.0.1:PORT to send a plan's
    health checks there.
    """
    import uvicorn

    from providers.dokploy.emulator import create_app

    app = create_app(
        api_key=api_key,
        seed=seed,
        build_seconds=build_seconds,
        latency=latency,
        parallel_builds=parallel_builds,
    )
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="info")


@app.command("github")
def github(
    port: int = typer.Option(3001, help="TCP port on 127.0.0.1."),
    seed: int = typer.Option(0, help="Seed for generated ids."),
) -> None:
    """Serve a GitHub REST and Actions OIDC emulator at http://127.0.0.1:PORT."""
    import uvicorn

    from providers.github.emulator import create_app

    uvicorn.run(create_app(seed=seed), host=LOOPBACK, port=port, log_level="info")
