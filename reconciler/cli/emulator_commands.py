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
) -> None:
    """Serve a Dokploy v0.30 emulator at http://127.0.0.1:PORT/api."""
    import uvicorn

    from providers.dokploy.emulator import create_app

    uvicorn.run(create_app(api_key=api_key, seed=seed), host=LOOPBACK, port=port, log_level="info")


@app.command("github")
def github(
    port: int = typer.Option(3001, help="TCP port on 127.0.0.1."),
    seed: int = typer.Option(0, help="Seed for generated ids."),
) -> None:
    """Serve a GitHub REST and Actions OIDC emulator at http://127.0.0.1:PORT."""
    import uvicorn

    from providers.github.emulator import create_app

    uvicorn.run(create_app(seed=seed), host=LOOPBACK, port=port, log_level="info")
