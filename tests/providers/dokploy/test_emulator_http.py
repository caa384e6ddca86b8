"""The emulator behaves like Dokploy at the HTTP level (what a raw caller observes)."""

from __future__ import annotations

import re

import httpx

from providers.dokploy.emulator import Emulator, create_app
from tests.providers.dokploy.fixtures import BASE_URL


async def _project(raw: httpx.AsyncClient) -> dict[str, str]:
    answer = (await raw.post("/api/project.create", json={"name": "shop"})).json()
    return {
        "projectId": answer["project"]["projectId"],
        "environmentId": answer["environment"]["environmentId"],
    }


async def _nginx_app(raw: httpx.AsyncClient, name: str = "w") -> str:
    """A new project's application running the public nginx image: its id."""
    ids = await _project(raw)
    answer = await raw.post("/api/application.create", json={"name": name, **ids})
    app_id: str = answer.json()["applicationId"]
    provider = {"dockerImage": "nginx", "username": None, "password": None, "registryUrl": None}
    await raw.post(
        "/api/application.saveDockerProvider", json={"applicationId": app_id, **provider}
    )
    return app_id


async def test_missing_or_wrong_key_is_401_unauthorized(raw_http: httpx.AsyncClient) -> None:
    for headers in ({"x-api-key": "wrong"}, {"x-api-key": ""}):
        answer = await raw_http.get("/api/project.all", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"message": "Unauthorized"}
    del raw_http.headers["x-api-key"]
    assert (await raw_http.get("/api/project.all")).status_code == 401


async def test_wrong_method_is_404_and_wrong_content_type_is_415(
    raw_http: httpx.AsyncClient,
) -> None:
    assert (await raw_http.post("/api/project.all", json={})).status_code == 404
    assert (await raw_http.get("/api/project.create", params={"name": "x"})).status_code == 404
    assert (await raw_http.get("/api/nope.nothing")).status_code == 404
    answer = await raw_http.post(
        "/api/project.create", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 415
    assert answer.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_missing_required_keys_answer_zod_issues(raw_http: httpx.AsyncClient) -> None:
    ids = await _project(raw_http)
    app = (await raw_http.post("/api/application.create", json={"name": "web", **ids})).json()
    answer = await raw_http.post(
        "/api/application.saveEnvironment",
        json={"applicationId": app["applicationId"], "env": "A=1"},
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "BAD_REQUEST"
    assert body["data"]["path"] == "application.saveEnvironment"
    # zod v4 (Dokploy v0.30.2, recorded): a required key that may be null is `nonoptional`.
    said = "Invalid input: expected nonoptional, received undefined"
    missing = {tuple(i["path"]) for i in body["issues"] if i["message"] == said}
    assert missing == {("buildArgs",), ("buildSecrets",), ("createEnvFile",)}
    assert set(body["data"]["zodError"]["fieldErrors"]) == {
        "buildArgs",
        "buildSecrets",
        "createEnvFile",
    }


async def test_wrong_types_and_bounds_are_rejected_like_zod(raw_http: httpx.AsyncClient) -> None:
    answer = await raw_http.post("/api/project.create", json={"name": ""})
    issue = answer.json()["issues"][0]
    assert (issue["code"], issue["path"]) == ("too_small", ["name"])
    answer = await raw_http.post("/api/project.create", json={"name": 5})
    said = "Invalid input: expected string, received number"
    assert answer.json()["issues"][0]["message"] == said
    answer = await raw_http.post("/api/domain.create", json={"host": "h", "port": 70000})
    assert answer.json()["issues"][0]["code"] == "too_big"


async def test_unknown_body_keys_are_stripped_not_stored(raw_http: httpx.AsyncClient) -> None:
    answer = await raw_http.post("/api/project.create", json={"name": "shop", "color": "red"})
    assert answer.status_code == 200
    assert "color" not in answer.json()["project"]


async def test_app_name_gets_a_random_suffix_and_duplicates_conflict(
    raw_http: httpx.AsyncClient,
) -> None:
    ids = await _project(raw_http)
    env = {"environmentId": ids["environmentId"]}
    one = (
        await raw_http.post("/api/application.create", json={"name": "a", "appName": "shop", **env})
    ).json()
    two = (
        await raw_http.post("/api/application.create", json={"name": "b", "appName": "shop", **env})
    ).json()
    assert re.fullmatch(r"shop-[a-z0-9]{6}", one["appName"])
    assert one["appName"] != two["appName"]
    clash = await raw_http.post(
        "/api/application.update",
        json={"applicationId": two["applicationId"], "appName": one["appName"]},
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "CONFLICT"


async def test_project_create_makes_protected_production_environment(
    raw_http: httpx.AsyncClient,
) -> None:
    ids = await _project(raw_http)
    envs = (
        await raw_http.get("/api/environment.byProjectId", params={"projectId": ids["projectId"]})
    ).json()
    assert [(e["name"], e["isDefault"]) for e in envs] == [("production", True)]
    refused = await raw_http.post(
        "/api/environment.remove", json={"environmentId": ids["environmentId"]}
    )
    assert refused.status_code == 400
    assert (
        len(
            (
                await raw_http.get(
                    "/api/environment.byProjectId", params={"projectId": ids["projectId"]}
                )
            ).json()
        )
        == 1
    )


async def test_environment_remove_refuses_one_holding_a_service_then_removes_it_empty(
    raw_http: httpx.AsyncClient,
) -> None:
    ids = await _project(raw_http)
    made = await raw_http.post(
        "/api/environment.create", json={"projectId": ids["projectId"], "name": "staging"}
    )
    environment_id = made.json()["environmentId"]
    app = await raw_http.post(
        "/api/application.create", json={"name": "web", "environmentId": environment_id}
    )
    refused = await raw_http.post("/api/environment.remove", json={"environmentId": environment_id})
    assert refused.status_code == 400
    assert "Delete all services first" in refused.json()["message"]
    await raw_http.post(
        "/api/application.delete", json={"applicationId": app.json()["applicationId"]}
    )
    removed = await raw_http.post("/api/environment.remove", json={"environmentId": environment_id})
    assert removed.status_code == 200 and removed.json()["name"] == "staging"
    gone = await raw_http.get("/api/environment.one", params={"environmentId": environment_id})
    assert gone.status_code == 404


async def test_application_writes_answer_true_and_deploy_answers_empty(
    raw_http: httpx.AsyncClient,
) -> None:
    ids = await _project(raw_http)
    app = (await raw_http.post("/api/application.create", json={"name": "w", **ids})).json()
    app_id = app["applicationId"]
    saved = await raw_http.post(
        "/api/application.saveDockerProvider",
        json={
            "applicationId": app_id,
            "dockerImage": "nginx",
            "username": None,
            "password": None,
            "registryUrl": None,
        },
    )
    assert saved.content == b"true"
    deployed = await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    assert deployed.status_code == 200 and deployed.content == b""


async def test_deployments_run_then_finish_newest_first_and_ten_kept() -> None:
    app = create_app(api_key="k", seed=1, build_seconds=5.0)
    emu: Emulator = app.state.emulator
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers={"x-api-key": "k"}
    ) as raw:
        app_id = await _nginx_app(raw)
        await raw.post("/api/application.deploy", json={"applicationId": app_id, "title": "first"})
        listed = (await raw.get("/api/deployment.all", params={"applicationId": app_id})).json()
        assert [(d["title"], d["status"]) for d in listed] == [("first", "running")]
        one = (await raw.get("/api/application.one", params={"applicationId": app_id})).json()
        assert one["applicationStatus"] == "running"
        emu.state.advance(5.0)
        listed = (await raw.get("/api/deployment.all", params={"applicationId": app_id})).json()
        assert listed[0]["status"] == "done" and listed[0]["finishedAt"]
        for n in range(12):
            await raw.post(
                "/api/application.deploy", json={"applicationId": app_id, "title": f"d{n}"}
            )
            emu.state.advance(5.0)
        listed = (await raw.get("/api/deployment.all", params={"applicationId": app_id})).json()
        assert len(listed) == 10
        assert [d["title"] for d in listed[:2]] == ["d11", "d10"]


async def test_env_takes_effect_only_after_a_successful_deploy(
    raw_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    app_id = await _nginx_app(raw_http)
    env_body = {
        "applicationId": app_id,
        "env": "A=1",
        "buildArgs": None,
        "buildSecrets": None,
        "createEnvFile": True,
    }
    await raw_http.post("/api/application.saveEnvironment", json=env_body)
    assert app_id not in emulator.state.live  # saved, not running
    await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    emulator.state.advance(1.0)
    assert emulator.state.live[app_id].env == "A=1"
    await raw_http.post("/api/application.saveEnvironment", json={**env_body, "env": "A=2"})
    emulator.faults.fail_next_deploy(app_id)
    await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    emulator.state.advance(1.0)
    assert emulator.state.live[app_id].env == "A=1"  # a failed build changes nothing live


async def test_compose_domains_apply_on_next_deploy(
    raw_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    ids = await _project(raw_http)
    comp = (
        await raw_http.post(
            "/api/compose.create",
            json={
                "name": "c",
                "environmentId": ids["environmentId"],
                "composeFile": "services: {}",
            },
        )
    ).json()
    await raw_http.post(
        "/api/domain.create",
        json={
            "host": "c.example.test",
            "composeId": comp["composeId"],
            "serviceName": "web",
            "domainType": "compose",
        },
    )
    assert emulator.state.live.get(comp["composeId"]) is None
    answer = (
        await raw_http.post("/api/compose.deploy", json={"composeId": comp["composeId"]})
    ).json()
    assert answer == {
        "success": True,
        "message": "Deployment queued",
        "composeId": comp["composeId"],
    }
    emulator.state.advance(1.0)
    assert [r["host"] for r in emulator.state.live[comp["composeId"]].routes] == ["c.example.test"]


async def test_same_seed_gives_same_ids() -> None:
    async def first_ids(seed: int) -> tuple[str, str]:
        app = create_app(api_key="k", seed=seed)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers={"x-api-key": "k"}
        ) as raw:
            ids = await _project(raw)
            made = (
                await raw.post("/api/application.create", json={"name": "w", "appName": "w", **ids})
            ).json()
            return made["applicationId"], made["appName"]

    assert await first_ids(3) == await first_ids(3)
    assert await first_ids(3) != await first_ids(4)


async def test_control_endpoints_need_the_key_and_drive_faults(raw_http: httpx.AsyncClient) -> None:
    assert (
        await raw_http.get("/__emulator/state", headers={"x-api-key": "bad"})
    ).status_code == 401
    faults = await raw_http.post("/__emulator/faults", json={"action": "unauthorized"})
    assert faults.json()["forceUnauthorized"] is True
    assert (await raw_http.get("/api/project.all")).status_code == 401
    assert (await raw_http.get("/__emulator/state")).status_code == 200  # controls still work
    await raw_http.post("/__emulator/reset")
    assert (await raw_http.get("/api/project.all")).json() == []
    bad = await raw_http.post("/__emulator/faults", json={"action": "explode"})
    assert bad.status_code == 400
    server = (await raw_http.post("/__emulator/servers", json={"name": "build-1"})).json()
    servers = (await raw_http.get("/api/server.all")).json()
    assert [s["serverId"] for s in servers] == [server["serverId"]]


async def test_state_endpoint_shows_env_keys_not_values(
    raw_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    app_id = await _nginx_app(raw_http)
    await raw_http.post(
        "/api/application.saveEnvironment",
        json={
            "applicationId": app_id,
            "env": "TOKEN=hunter2-value",
            "buildArgs": None,
            "buildSecrets": None,
            "createEnvFile": True,
        },
    )
    await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    emulator.state.advance(1.0)
    state = await raw_http.get("/__emulator/state")
    assert state.json()["live"][app_id]["env"]["keys"] == ["TOKEN"]
    assert "hunter2-value" not in state.text


async def test_replicas_take_effect_only_after_a_successful_deploy(
    raw_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    """application.update saves replicas; Swarm scales to them at the next deploy only."""
    app_id = await _nginx_app(raw_http, "r")
    await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    emulator.state.advance(1.0)
    assert emulator.state.live[app_id].replicas == 1
    await raw_http.post("/api/application.update", json={"applicationId": app_id, "replicas": 3})
    saved = (await raw_http.get("/api/application.one", params={"applicationId": app_id})).json()
    assert saved["replicas"] == 3
    assert emulator.state.live[app_id].replicas == 1  # saved, not running
    await raw_http.post("/api/application.deploy", json={"applicationId": app_id})
    emulator.state.advance(1.0)
    assert emulator.summary()["live"][app_id]["replicas"] == 3


async def test_a_failed_deployment_has_a_log_tail_and_no_error_message() -> None:
    """As v0.30.2 does (tests/contracts/dokploy-real-v0.30.2/README.md): a failed
    deployment's `errorMessage` stays null, and `deployment.readLogs` answers the tail of its
    log file as one string, the failed pull last."""
    app = create_app(api_key="k", seed=1, build_seconds=1.0)
    emu: Emulator = app.state.emulator
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers={"x-api-key": "k"}
    ) as raw:
        app_id = await _nginx_app(raw)
        emu.faults.fail_next_deploy()
        await raw.post("/api/application.deploy", json={"applicationId": app_id, "title": "t"})
        emu.state.advance(1.0)
        (row,) = (await raw.get("/api/deployment.all", params={"applicationId": app_id})).json()
        assert row["status"] == "error" and row["errorMessage"] is None and row["logPath"]
        logs = await raw.get(
            "/api/deployment.readLogs", params={"deploymentId": row["deploymentId"]}
        )
        assert logs.status_code == 200
        text = logs.json()
        assert isinstance(text, str) and text.endswith("❌ Pulling image failed\n")
        assert "Pulling nginx" in text
        last = await raw.get(
            "/api/deployment.readLogs", params={"deploymentId": row["deploymentId"], "tail": "1"}
        )
        assert last.json() == "❌ Pulling image failed\n"
        missing = await raw.get("/api/deployment.readLogs", params={"deploymentId": "nope"})
        assert missing.status_code == 404
