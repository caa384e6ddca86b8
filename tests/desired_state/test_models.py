"""Model rules an operator relies on: each rejects bad input with a message that helps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from desired_state.host import HostSpec
from desired_state.product import ProductSpec
from desired_state.runner_pool import RunnerPoolSpec
from desired_state.secrets import looks_like_secret
from desired_state.templates import placeholders
from tests.support.product_documents import product_spec


def test_a_valid_product_parses() -> None:
    spec = ProductSpec.model_validate(product_spec())
    assert spec.lane("prod").is_prod and not spec.lane("testing").is_prod


def test_lane_names_must_be_unique() -> None:
    lanes = [
        {"name": "testing", "image": "ghcr.io/a/b:1"},
        {"name": "testing", "image": "ghcr.io/a/b:2"},
    ]
    with pytest.raises(ValidationError, match="lane names must be unique; repeated: testing"):
        ProductSpec.model_validate(product_spec(lanes=lanes))


def test_prod_lane_needs_an_image_digest() -> None:
    lanes = [{"name": "prod", "image": "ghcr.io/acme/shop:latest"}]
    with pytest.raises(ValidationError, match="immutable digest"):
        ProductSpec.model_validate(product_spec(lanes=lanes))


def test_tier_prod_makes_any_lane_a_prod_lane() -> None:
    lanes = [{"name": "live", "tier": "prod", "image": "ghcr.io/acme/shop:v1"}]
    with pytest.raises(ValidationError, match="immutable digest"):
        ProductSpec.model_validate(product_spec(lanes=lanes))


@pytest.mark.parametrize(
    "host", ["shop", "-shop.example.com", "Shop.Example.com", "a..b.com", "x" * 64 + ".com"]
)
def test_domain_hosts_are_validated(host: str) -> None:
    lanes = [{"name": "testing", "image": "ghcr.io/a/b:1", "domains": [{"host": host}]}]
    with pytest.raises(ValidationError, match="host name"):
        ProductSpec.model_validate(product_spec(lanes=lanes))


def test_templates_only_use_known_placeholders() -> None:
    preview = {"enabled": True, "slug": "pr-{number}-{branch}", "image": "ghcr.io/a/b:pr-{number}"}
    with pytest.raises(ValidationError, match=r"unknown placeholder\(s\) \{branch\}"):
        ProductSpec.model_validate(product_spec(preview=preview))


def test_domain_template_must_render_to_a_host() -> None:
    preview = {
        "enabled": True,
        "domain": "{slug}_preview.example.com",
        "image": "ghcr.io/a/b:pr-{number}",
    }
    with pytest.raises(ValidationError, match="not a valid host name"):
        ProductSpec.model_validate(product_spec(preview=preview))


def test_preview_template_lane_must_exist() -> None:
    preview = {"enabled": True, "templateLane": "staging", "image": "ghcr.io/a/b:pr-{number}"}
    with pytest.raises(ValidationError, match="templateLane 'staging' is not a lane"):
        ProductSpec.model_validate(product_spec(preview=preview))


def test_the_model_leaves_secret_looking_values_to_the_loader() -> None:
    """Stored specs are read back through the model; only the loader judges env values,
    since only it sees the `setpoint.dev/not-secret` annotation (tests/desired_state/
    test_validation.py shows the check)."""
    token = "ghp_" + "x1Y2z3" * 6
    ProductSpec.model_validate(product_spec(env={"GITHUB_TOKEN_FOR_CI": token}))
    with pytest.raises(ValidationError, match="not a valid environment variable name"):
        ProductSpec.model_validate(product_spec(env={"BAD-NAME": "x"}))


def test_secret_references_need_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of fromEnv, fromFile or fromStore"):
        ProductSpec.model_validate(product_spec(secrets={"DB": {"fromEnv": "A", "fromFile": "/b"}}))


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ProductSpec.model_validate(product_spec(replicas=3))


def test_runner_pool_counts_are_ordered() -> None:
    pool = {
        "scope": "repository",
        "repository": "acme/shop",
        "host": "build-1",
        "count": {"min": 3, "max": 1},
        "image": "ghcr.io/actions/actions-runner:2.321.0",
    }
    with pytest.raises(ValidationError, match=r"count.min \(3\) must be <= count.max \(1\)"):
        RunnerPoolSpec.model_validate(pool)
    with pytest.raises(ValidationError):
        RunnerPoolSpec.model_validate({**pool, "count": {"min": -1, "max": 1}})


def test_runner_pool_allows_nothing_by_default() -> None:
    pool = RunnerPoolSpec.model_validate(
        {
            "scope": "organization",
            "organization": "acme",
            "host": "h",
            "count": {"min": 0, "max": 1},
            "image": "ghcr.io/actions/actions-runner:2.321.0",
        }
    )
    assert pool.allow == []


def test_ssh_host_needs_an_endpoint() -> None:
    with pytest.raises(ValidationError, match="an ssh host needs `ssh`"):
        HostSpec.model_validate({"type": "ssh"})


@given(st.text(alphabet="abc{}number_ -", max_size=30))
def test_placeholder_parser_never_crashes_on_odd_braces(template: str) -> None:
    try:
        names = placeholders(template)
    except ValueError:
        return
    assert all(name and "{" not in name and "}" not in name for name in names)


@given(
    st.sampled_from(["PORT", "LOG_LEVEL", "REGION", "FEATURES", "APP_NAME"]),
    st.from_regex(r"[a-z]{0,7}", fullmatch=True),
)
def test_short_plain_values_under_plain_names_are_not_taken_for_secrets(
    key: str, value: str
) -> None:
    assert not looks_like_secret(key, value)


@pytest.mark.parametrize("key", ["DB_PASSWORD", "API_TOKEN", "DB_PASS", "SECRET"])
def test_short_values_under_secret_names_are_taken_for_secrets(key: str) -> None:
    assert looks_like_secret(key, "hunter2")


def test_compose_lanes_take_replicas_from_their_compose_file() -> None:
    lanes = [{"name": "testing", "target": "compose", "composeFile": "services: {}", "replicas": 3}]
    with pytest.raises(ValidationError, match="`replicas` is for application lanes"):
        ProductSpec.model_validate(product_spec(lanes=lanes))


def test_compose_domains_name_their_service() -> None:
    lanes = [
        {
            "name": "testing",
            "target": "compose",
            "composeFile": "services: {}",
            "domains": [{"host": "t.example.com"}],
        }
    ]
    with pytest.raises(ValidationError, match="domains need `service`"):
        ProductSpec.model_validate(product_spec(lanes=lanes))
