"""The emulator deploys env text as Dokploy v0.30 does: parsed by dotenv, references resolved,
an unknown reference aborting the deploy; so a wrong spelling shows in what the service runs."""

from __future__ import annotations

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from providers.dokploy.envfile import merge


async def _deployed(client: DokployClient, emulator: Emulator, env: str) -> str:
    created = await client.project_create("envs")
    environment_id = created.environment.environment_id
    emulator.state.projects[created.project.project_id]["env"] = "DB_URL=postgres://db/x\n"
    app = await client.application_create("web", environment_id)
    await client.application_save_docker_provider(app.application_id, docker_image="nginx:1")
    await client.application_save_environment(app.application_id, env)
    await client.application_deploy(app.application_id)
    emulator.state.advance(1.0)
    return app.application_id


async def test_the_service_gets_what_dotenv_makes_of_the_text(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    text = 'OLD="say \\"hi\\""\nTAB="a\\tb"\nTICK=`whoami`\nREF=${{project.DB_URL}}\n'
    app_id = await _deployed(dokploy_client, emulator, text)
    assert emulator.state.live[app_id].container_env == {
        "OLD": 'say \\"hi\\"',  # what the old double-quote escapes gave on a real server
        "TAB": "a\\tb",
        "TICK": "whoami",
        "REF": "postgres://db/x",
    }


async def test_setpoints_spelling_reaches_the_service_unchanged(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    wanted = {"DQ": 'say "hi"', "PATH": "C:\\path\\n", "TAB": "a\tb", "TICK": "`whoami`"}
    app_id = await _deployed(dokploy_client, emulator, merge(None, wanted))
    assert emulator.state.live[app_id].container_env == wanted


async def test_an_unknown_reference_fails_the_deploy_and_changes_nothing_live(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    app_id = await _deployed(dokploy_client, emulator, "A=${{project.NOPE}}\n")
    assert app_id not in emulator.state.live
    (deployment,) = await dokploy_client.deployment_all(app_id)
    assert deployment.status == "error"
