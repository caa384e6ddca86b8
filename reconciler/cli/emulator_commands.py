"""`setpoint emulator ...`: serve a provider emulator on loopback for local work and tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


@app.command("all")
def serve_linked(
    dokploy_port: int = typer.Option(3000, "--dokploy-port", help="Dokploy's TCP port."),
    github_port: int = typer.Option(3001, "--github-port", help="GitHub's TCP port."),
    api_key: str = typer.Option(
        ...,
        "--api-key",
        envvar="SETPOINT_EMULATOR_API_KEY",
        help="Key clients must send to Dokploy in x-api-key.",
    ),
    server: list[str] = typer.Option(
        ["build-1"], "--server", help="A Dokploy server runner hosts may name (repeatable)."
    ),
    repository: list[str] = typer.Option(
        ["acme/shop"], "--repo", help="An OWNER/NAME repository GitHub has (repeatable)."
    ),
    seed: int = typer.Option(0, help="Seed for generated ids and app-name suffixes."),
    build_seconds: float = typer.Option(
        0.2, "--build-seconds", min=0, help="How long each deployment takes to build."
    ),
) -> None:
    """Serve the Dokploy and GitHub emulators together, linked as the real ones are: a
    runner application Dokploy starts comes online on GitHub, and Dokploy lists the named
    servers, so the runner walkthrough (docs/runners.md) works end to end."""
    import anyio

    from providers.dokploy.emulator import create_app as create_dokploy
    from providers.github.emulator import create_app as create_github
    from providers.github.emulator.runner_link import RunnerLink
    from reconciler.cli.output import console, fail

    owners_and_names = [name.split("/", 1) for name in repository]
    if any(len(parts) != 2 or not all(parts) for parts in owners_and_names):
        raise fail("--repo takes OWNER/NAME, for example acme/shop", code=2)
    dokploy_app = create_dokploy(api_key=api_key, seed=seed, build_seconds=build_seconds)
    github_app = create_github(seed=seed)
    for name in server:
        dokploy_app.state.emulator.add_server(name)
    for owner, name in owners_and_names:
        github_app.state.emulator.add_repo(owner, name)
    dokploy_app.state.emulator.link_runners(RunnerLink(github_app.state.emulator))
    console.print(
        f"export SETPOINT_DOKPLOY_URL=http://{LOOPBACK}:{dokploy_port} "
        f"SETPOINT_DOKPLOY_API_KEY=<the --api-key>\n"
        f"export SETPOINT_GITHUB_API_URL=http://{LOOPBACK}:{github_port} "
        f"SETPOINT_GITHUB_TOKEN=any-non-empty-token\n"
        f"Dokploy servers: {', '.join(server)}; repositories: {', '.join(repository)}",
        highlight=False,
        markup=False,
    )
    try:
        anyio.run(_serve_both, dokploy_app, dokploy_port, github_app, github_port)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _serve_both(
    dokploy_app: Any, dokploy_port: int, github_app: Any, github_port: int
) -> None:
    """Both servers in one event loop; SIGINT or SIGTERM stops both (uvicorn's own signal
    capture is per server, so it is left out and one receiver stops them together)."""
    import contextlib
    import signal

    import anyio
    import uvicorn

    class LeavesSignalsAlone(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    servers = [
        LeavesSignalsAlone(
            uvicorn.Config(
                app_, host=LOOPBACK, port=port, log_level="info", timeout_graceful_shutdown=2
            )
        )
        for app_, port in ((dokploy_app, dokploy_port), (github_app, github_port))
    ]

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                for server in servers:
                    server.should_exit = True
                return

    async with anyio.create_task_group() as group:
        group.start_soon(stop_on_signal)
        async with anyio.create_task_group() as serving:
            for server in servers:
                serving.start_soon(server.serve)
        group.cancel_scope.cancel()
