"""Create-if-absent: how many requests it costs, and that it never makes a duplicate."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette

from providers.dokploy.client import DokployClient
from providers.dokploy.emulator import Emulator
from providers.dokploy.ensure import AmbiguousName, ProjectIndex, ensure_application
from providers.dokploy.errors import DokployError
from tests.providers.dokploy.contract import ContractRecorder, RecordingTransport
from tests.providers.dokploy.fixtures import make_client

FAST_TIMEOUT = 0.1  # client timeout for tests that make the emulator hang


@pytest.fixture
async def fast_client(dokploy_emulator: Starlette, dokploy_contract: ContractRecorder) -> Any:
    async with make_client(dokploy_emulator, dokploy_contract, timeout=FAST_TIMEOUT) as client:
        yield client


def requests(client: DokployClient) -> Counter[str]:
    """Requests the client sent so far, per procedure."""
    transport = client._http._transport
    assert isinstance(transport, RecordingTransport)
    return Counter(procedure for _, procedure in transport.seen)


def forget_requests(client: DokployClient) -> None:
    transport = client._http._transport
    assert isinstance(transport, RecordingTransport)
    transport.seen.clear()


async def test_ensuring_many_projects_and_environments_lists_projects_once(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    existing = (await dokploy_client.project_create("p0")).project
    forget_requests(dokploy_client)
    index = ProjectIndex(dokploy_client)
    found, created = await index.ensure_project("p0")
    assert (found.project_id, created) == (existing.project_id, False)
    for n in range(1, 6):
        project, created = await index.ensure_project(f"p{n}")
        assert created and [e.name for e in project.environments] == ["production"]
        environment, created = await index.ensure_environment(project.project_id, "testing")
        assert created and environment.name == "testing"
        # Asked again, both are found in what the index already knows.
        assert (await index.ensure_project(f"p{n}"))[1] is False
        again = await index.ensure_environment(project.project_id, "testing")
        assert again == (environment, False)
    assert requests(dokploy_client) == {
        "project.all": 1,
        "project.search": 5,  # each name the listing lacks is asked for before its create
        "project.create": 5,
        "environment.create": 5,
    }
    assert len(emulator.state.projects) == 6 and len(emulator.state.environments) == 11


async def test_a_project_the_listing_hides_is_found_by_name_and_not_made_again(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    """`project.all` answering [] (a proxy, a flapping backend) is not proof that a project
    is absent: before creating, the index asks `project.search` for the name."""
    made = await dokploy_client.project_create("shop")
    await dokploy_client.project_create("shop-old")  # matched by the search, not by name
    emulator.faults.empty_list("project.all")
    index = ProjectIndex(dokploy_client)
    project, created = await index.ensure_project("shop")
    assert (project.project_id, created) == (made.project.project_id, False)
    assert [e.environment_id for e in project.environments] == [made.environment.environment_id]
    assert sorted(p["name"] for p in emulator.state.projects.values()) == ["shop", "shop-old"]
    # What the search found is known to the index: its environments too, with no new read.
    forget_requests(dokploy_client)
    environment, created = await index.ensure_environment(project.project_id, "production")
    assert (environment.environment_id, created) == (made.environment.environment_id, False)
    assert not requests(dokploy_client)


async def test_a_failed_search_by_name_stops_the_create(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    emulator.faults.fail_next("project.search", 500, count=5)
    with pytest.raises(DokployError):
        await ProjectIndex(dokploy_client).ensure_project("shop")
    assert not emulator.state.projects


async def test_concurrent_ensures_share_one_listing_and_never_duplicate(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    index = ProjectIndex(dokploy_client)
    emulator.faults.latency(0.01)  # let the tasks interleave at every request
    async with anyio.create_task_group() as group:
        for name in ("a", "b", "c", "a", "b", "c"):
            group.start_soon(index.ensure_project, name)
    assert sorted(p["name"] for p in emulator.state.projects.values()) == ["a", "b", "c"]
    assert requests(dokploy_client)["project.all"] == 1


async def test_a_lost_project_create_is_found_by_listing_again_not_repeated(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    index = ProjectIndex(fast_client)
    emulator.faults.timeout("project.create", seconds=5, when="after", count=1)
    project, created = await index.ensure_project("shop")
    assert created and [p["name"] for p in emulator.state.projects.values()] == ["shop"]
    assert [e.name for e in project.environments] == ["production"]
    assert requests(fast_client)["project.all"] == 2  # the listing, and once after the loss
    emulator.faults.timeout("environment.create", seconds=5, when="after", count=1)
    environment, created = await index.ensure_environment(project.project_id, "staging")
    assert created and environment.name == "staging"
    names = sorted(e["name"] for e in emulator.state.environments.values())
    assert names == ["production", "staging"]
    # Nothing was lost along the way: both are known without another request.
    before = requests(fast_client)
    assert (await index.ensure_environment(project.project_id, "staging"))[1] is False
    assert requests(fast_client) == before


async def test_a_service_known_absent_is_created_without_reading_first(
    dokploy_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await dokploy_client.project_create("shop")).environment.environment_id
    forget_requests(dokploy_client)
    app, created = await ensure_application(dokploy_client, env_id, "web", known_absent=True)
    assert created and app.name == "web"
    assert requests(dokploy_client) == {"application.create": 1}


async def test_a_lost_answer_to_a_create_known_absent_still_makes_one_service(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    forget_requests(fast_client)
    emulator.faults.timeout("application.create", seconds=5, when="after", count=1)
    app, created = await ensure_application(fast_client, env_id, "web", known_absent=True)
    assert created and list(emulator.state.applications) == [app.application_id]
    # Sent once, then looked up: the lookup found it, so it was not sent again.
    assert requests(fast_client) == {"application.create": 1, "environment.one": 1}


async def test_a_create_known_absent_lost_before_dokploy_acted_is_sent_again(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    emulator.faults.timeout("application.create", seconds=5, when="before", count=1)
    app, created = await ensure_application(fast_client, env_id, "web", known_absent=True)
    assert created and list(emulator.state.applications) == [app.application_id]


async def test_after_a_lost_answer_two_services_of_the_name_are_not_guessed_between(
    fast_client: DokployClient, emulator: Emulator
) -> None:
    env_id = (await fast_client.project_create("shop")).environment.environment_id
    await fast_client.application_create("web", env_id)  # somebody's, made after planning
    emulator.faults.timeout("application.create", seconds=5, when="after", count=1)
    with pytest.raises(AmbiguousName):
        await ensure_application(fast_client, env_id, "web", known_absent=True)
    assert len(emulator.state.applications) == 2  # ours once, theirs untouched
