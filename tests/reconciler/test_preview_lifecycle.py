"""Previews never vanish by surprise, and say which commit they run (issue 21).

Operator edits (`desired apply`, `--prune`, policy switches) never take a running preview
down; a push deploys the new head whatever the image tag looks like; repository names are
read in any case, as GitHub does; a refused fork is shown with its reason. Both emulators in
process.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from providers.github.emulator import EmulatorState
from providers.github.models import same_repository
from reconciler.kinds.preview.lanes import AnchorState, human_duration
from reconciler.loop.passes import reconcile_pass
from reconciler.runtime import Runtime
from tests.reconciler.preview_fleet import (
    deployments_of,
    listed,
    preview_services,
    store_product,
    views,
    write_product,
)
from tests.support.cli import Invoke
from tests.support.previews import outcomes


async def test_desired_apply_and_prune_leave_the_anchors_discovery_wrote(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    setpoint: Invoke,
) -> None:
    folder = tmp_path / "fleet"
    store_product(engine, folder, "notes")
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    assert list(preview_services(emulator, "notes")) == ["notes-pr-1"]

    plain = setpoint("desired", "apply", str(folder))
    assert plain.exit_code == 0, plain.output
    assert "PreviewAnchor" not in plain.stdout  # never offered for removal
    pruned = setpoint("desired", "apply", "--prune", "--yes", str(folder))
    assert pruned.exit_code == 0, pruned.output
    assert "PreviewAnchor" not in pruned.stdout + pruned.stderr
    stored = setpoint("desired", "list", "--kind", "PreviewAnchor", "-o", "json").stdout
    assert '"notes-pr-1"' in stored

    after = await reconcile_pass(previews)
    assert outcomes(after) == {"preview:notes/pr-1": "converged"}  # left as it is
    assert preview_services(emulator, "notes") == {
        "notes-pr-1": f"ghcr.io/acme/notes:pr-1-{pr.head_sha[:7]}"
    }


async def test_switching_to_on_request_keeps_every_preview_running_what_it_runs(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "fleet"
    store_product(engine, folder, "notes")
    first = [github.open_pull("acme", "notes", labels=["preview"]).head_sha for _ in range(2)]
    await reconcile_pass(previews)
    running = {f"notes-pr-{n}": f"ghcr.io/acme/notes:pr-{n}-{first[n - 1][:7]}" for n in (1, 2)}
    assert preview_services(emulator, "notes") == running

    store_product(engine, folder, "notes", deploy="on-request")  # the operator's switch
    for _ in range(2):
        report = await reconcile_pass(previews)
        assert "apply_failed" not in outcomes(report).values()
        assert preview_services(emulator, "notes") == running  # nothing torn down
    shown = views(engine, previews.clock())
    assert shown["preview:notes/pr-1"].state is AnchorState.live
    assert shown["preview:notes/pr-1"].running_sha == first[0]

    _, after = github.push("acme", "notes", 1)
    await reconcile_pass(previews)
    assert preview_services(emulator, "notes") == running  # the new head waits for CI
    pr1 = views(engine, previews.clock())["preview:notes/pr-1"]
    assert pr1.state is AnchorState.live and f"head {after[:7]} waits" in pr1.detail


async def test_a_push_redeploys_a_preview_whose_image_tag_has_no_sha(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    setpoint: Invoke,
) -> None:
    store_product(engine, tmp_path, "notes", image="ghcr.io/acme/notes:pr-{number}")
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    assert deployments_of(emulator, "notes-pr-1") == 1
    assert listed(setpoint("previews", "list", "-o", "json").stdout)[1]["runningSha"] == (
        pr.head_sha
    )

    before, after = github.push("acme", "notes", 1)  # CI overwrote the tag `pr-1`
    pushed = await reconcile_pass(previews)
    assert outcomes(pushed) == {"preview:notes/pr-1": "applied"}
    assert deployments_of(emulator, "notes-pr-1") == 2  # the new head was deployed
    row = listed(setpoint("previews", "list", "-o", "json").stdout)[1]
    assert (row["headSha"], row["runningSha"]) == (after, after)
    assert before != after


async def test_a_preview_shows_the_commit_it_runs_until_the_new_head_is_deployed(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    store_product(engine, tmp_path, "notes", image="ghcr.io/acme/notes:pr-{number}")
    pr = github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    first = pr.head_sha
    _, after = github.push("acme", "notes", 1)
    emulator.faults.fail_next("application.deploy", status=500)  # the new head never ran
    await reconcile_pass(previews)
    view = views(engine, previews.clock())["preview:notes/pr-1"]
    assert (view.spec.head_sha, view.running_sha) == (after, first)
    assert f"runs {first[:7]}; its head {after[:7]} deploys at the next pass" in view.detail


async def test_a_product_written_in_another_case_than_its_repository_gets_previews(
    previews: Runtime, github: EmulatorState, emulator: Emulator, engine: Engine, tmp_path: Path
) -> None:
    github.add_repo("Acme", "Notes")  # how GitHub spells it
    store_product(engine, tmp_path, "notes", repository="acme/notes")  # how the operator did
    github.open_pull("Acme", "Notes", labels=["preview"])
    report = await reconcile_pass(previews)
    assert not report.discovery_problems, report.discovery_problems
    assert list(preview_services(emulator, "notes")) == ["notes-pr-1"]
    [view] = [v for v in views(engine, previews.clock()).values() if v.product == "notes"]
    assert view.state is AnchorState.live and not view.spec.fork  # not read as a fork


async def test_the_github_emulator_answers_any_case_of_a_repository_name(
    github_app: FastAPI, github: EmulatorState
) -> None:
    github.add_repo("Acme", "Store")
    github.open_pull("acme", "store", labels=["preview"])  # found again in any case
    transport = httpx.ASGITransport(app=github_app)
    headers = {"authorization": "Bearer ghp_any"}
    async with httpx.AsyncClient(transport=transport, base_url="http://github.test") as client:
        answers = [
            (await client.get(f"/repos/{name}/pulls", headers=headers)).json()
            for name in ("Acme/Store", "acme/store", "ACME/store")
        ]
    assert answers[0] == answers[1] == answers[2]
    assert [p["base"]["repo"]["full_name"] for p in answers[0]] == ["Acme/Store"]
    assert github.pull("ACME", "STORE", 1) is github.pull("Acme", "Store", 1)


def test_repository_names_are_one_repository_in_any_case() -> None:
    assert same_repository("Acme/Shop", "acme/shop")
    assert not same_repository("acme/shop", "acme/shop-api")
    assert not same_repository(None, "acme/shop")  # a deleted fork is nobody's repository


async def test_a_fork_without_allow_forks_is_listed_as_refused_with_the_reason(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    setpoint: Invoke,
) -> None:
    store_product(engine, tmp_path, "notes", allow_forks="[friend]")
    github.open_pull("acme", "notes", labels=["preview"], head_repo="stranger/notes")
    github.open_pull("acme", "notes", labels=["preview"], head_repo="Friend/notes")
    await reconcile_pass(previews)
    assert list(preview_services(emulator, "notes")) == ["notes-pr-2"]  # owners in any case
    rows = listed(setpoint("previews", "list", "-o", "json").stdout)
    assert rows[1]["state"] == "refused"
    assert "fork stranger/notes" in rows[1]["detail"] and "allowForks" in rows[1]["detail"]
    assert rows[2]["state"] == "live"

    github.close_pull("acme", "notes", 1)
    await reconcile_pass(previews)
    rows = listed(setpoint("previews", "list", "-o", "json").stdout)
    assert rows[1]["state"] == "gone" and "never had a preview" in rows[1]["detail"]


async def test_a_grace_period_reads_as_a_time(
    previews: Runtime,
    github: EmulatorState,
    emulator: Emulator,
    engine: Engine,
    tmp_path: Path,
    setpoint: Invoke,
) -> None:
    store_product(engine, tmp_path, "notes", grace=30)
    github.open_pull("acme", "notes", labels=["preview"])
    await reconcile_pass(previews)
    github.close_pull("acme", "notes", 1)
    await reconcile_pass(previews)
    assert list(preview_services(emulator, "notes")) == ["notes-pr-1"]  # kept for the grace
    detail = listed(setpoint("previews", "list", "-o", "json").stdout)[1]["detail"]
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.search(rf"kept until {when} \((29m \d+s|30m) more\)", detail), detail


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (40, "40s"), (1794, "29m 54s"), (3900, "1h 5m"), (2 * 86400 + 3 * 3600, "2d 3h")],
)
def test_durations_read_as_people_say_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_write_product_makes_a_valid_file(tmp_path: Path, setpoint: Invoke) -> None:
    path = write_product(tmp_path, "notes", deploy="on-request", ttl=2)
    assert setpoint("validate", str(path)).exit_code == 0
