"""Whole-product checks: what an operator sees when desired state could be misread (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from desired_state.issues import InvalidDesiredState, Issue
from desired_state.loader import load_path, load_text
from desired_state.product_checks import SERVICE_NAME_MAX, compose_image_problems
from tests.support.product_documents import product_yaml

DIGEST = "@sha256:" + "ab" * 32


def issues_of(text: str) -> list[Issue]:
    with pytest.raises(InvalidDesiredState) as caught:
        load_text(text, "orca.yaml")
    return caught.value.issues


# -- 1. env and secrets overlap after the lane merge ---------------------------------------


def test_a_key_in_env_and_secrets_after_the_merge_is_refused_at_the_key() -> None:
    text = product_yaml(
        top=(
            "  env:\n"
            "    DB_USER: orca-plain-user\n"
            "  secrets:\n"
            "    DB_USER: {fromEnv: ORCA_DB_USER}\n"
        ),
        lanes=(
            "    - name: testing\n"
            "      image: ghcr.io/acme/orca:main\n"
            "      env:\n"
            "        DB_USER: override-value\n"
        ),
    )
    [issue] = issues_of(text)
    assert (issue.line, issue.field) == (19, "spec.lanes[0].env.DB_USER")
    assert "DB_USER is set both in env and in secrets for lane 'testing'" in issue.message
    assert "override-value" not in str(issue) and "orca-plain-user" not in str(issue)


def test_a_product_level_overlap_is_reported_once_at_the_product_env_key() -> None:
    text = product_yaml(
        top="  env:\n    TOKEN_ID: plain\n  secrets:\n    TOKEN_ID: {fromStore: tok}\n",
        lanes=(
            "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
            "    - name: staging\n      image: ghcr.io/acme/orca:main\n"
        ),
    )
    [issue] = issues_of(text)
    assert (issue.line, issue.field) == (12, "spec.env.TOKEN_ID")
    assert "plain" not in issue.message.replace("in env", "")


def test_a_lane_secret_shadowing_product_env_is_refused_at_the_lane_secret() -> None:
    text = product_yaml(
        top="  env:\n    DB_HOST: db.internal\n",
        lanes=(
            "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
            "      secrets:\n        DB_HOST: {fromEnv: X}\n"
        ),
    )
    [issue] = issues_of(text)
    assert issue.field == "spec.lanes[0].secrets.DB_HOST"
    assert "db.internal" not in issue.message


# -- 4. one Dokploy service name per lane, and a name Dokploy accepts ---------------------


def test_two_lanes_mapping_to_one_service_name_are_refused(tmp_path: Path) -> None:
    lane = "    - name: {lane}\n      image: ghcr.io/acme/orca:main\n"
    (tmp_path / "a.yaml").write_text(product_yaml("orca-web", lane.format(lane="testing")))
    (tmp_path / "b.yaml").write_text(product_yaml("orca", lane.format(lane="web-testing")))
    with pytest.raises(InvalidDesiredState) as caught:
        load_path(tmp_path)
    [issue] = caught.value.issues
    assert issue.field == "spec.lanes[0].name"
    assert "'orca-web-testing'" in issue.message and "rename one of them" in issue.message
    assert {"orca/web-testing", "orca-web/testing"} <= set(issue.message.replace(",", " ").split())


def test_a_service_name_longer_than_dokploy_accepts_is_refused_at_the_lane_name() -> None:
    name, lane = "p" * 40, "l" * 30  # each a valid name; together 71 characters
    [issue] = issues_of(product_yaml(name, f"    - name: {lane}\n      image: ghcr.io/acme/o:1\n"))
    assert (issue.line, issue.field) == (12, "spec.lanes[0].name")
    assert f"is 71 characters; Dokploy accepts at most {SERVICE_NAME_MAX}" in issue.message
    fits = "l" * (SERVICE_NAME_MAX - len(name) - 1)
    assert load_text(product_yaml(name, f"    - name: {fits}\n      image: ghcr.io/acme/o:1\n"))


# -- 5. every image of a prod compose lane is pinned by digest ----------------------------


def compose_lane(lane: str, *images: str) -> str:
    services = "".join(
        f"          s{n}:\n            image: {image}\n" for n, image in enumerate(images)
    )
    return (
        f"    - name: {lane}\n      target: compose\n"
        f"      composeFile: |\n        services:\n{services}"
    )


def test_a_prod_compose_lane_with_a_tag_or_latest_is_refused_at_its_compose_file() -> None:
    text = product_yaml(
        lanes=compose_lane("prod", f"ghcr.io/acme/api{DIGEST}", "redis:latest", "x:7")
    )
    issues = issues_of(text)
    assert {(i.line, i.field) for i in issues} == {(14, "spec.lanes[0].composeFile")}
    messages = sorted(i.message for i in issues)
    assert len(messages) == 2
    assert "compose service 's1' uses 'redis:latest'" in messages[0]
    assert "compose service 's2' uses 'x:7'" in messages[1]
    assert all("lane 'prod' is a prod lane" in m for m in messages)


def test_a_prod_compose_service_built_from_source_or_from_a_variable_is_refused() -> None:
    lanes = (
        "    - name: web\n      tier: prod\n      target: compose\n      composeFile: |\n"
        "        services:\n          api:\n            build: .\n"
        "          db:\n            image: ${DB_IMAGE}\n"
    )
    messages = sorted(i.message for i in issues_of(product_yaml(lanes=lanes)))
    assert "'api' has no `image`" in messages[0]
    assert "'db' uses '${DB_IMAGE}'" in messages[1]


def test_a_prod_compose_image_that_is_no_image_reference_is_not_echoed() -> None:
    lanes = compose_lane("prod", "'https://user:hunter2-pass@registry.example.com/x'")
    [issue] = issues_of(product_yaml(lanes=lanes))  # a password in clear is refused first
    assert "hunter2" not in str(issue)
    assert "a credential written in clear (image holds a URL with a password)" in issue.message
    compose = "services:\n  api:\n    image: 'https://user:hunter2-pass@registry.example.com/x'\n"
    [problem] = compose_image_problems(compose)
    assert "hunter2" not in problem
    assert "uses an image that is not an image reference (not shown)" in problem


def test_pinned_prod_compose_and_tagged_testing_compose_pass() -> None:
    lanes = compose_lane("prod", f"ghcr.io/acme/api{DIGEST}") + compose_lane("testing", "x:main")
    assert load_text(product_yaml(lanes=lanes))


# -- 6. a health check on a lane with no domain is refused, never dropped -----------------


def test_a_health_check_with_no_url_on_a_lane_with_no_domain_is_refused_at_the_check() -> None:
    lanes = (
        "    - name: testing\n      image: ghcr.io/acme/orca:main\n"
        "      healthChecks:\n"
        "        - url: https://status.example.com/orca\n"
        "        - path: /ready\n"
    )
    [issue] = issues_of(product_yaml(lanes=lanes))
    assert (issue.line, issue.field) == (16, "spec.lanes[0].healthChecks[1]")
    assert "no domain to check it on: give it a `url`" in issue.message
