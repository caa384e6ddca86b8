"""Invariant 16: what Setpoint writes is what the service gets, proven against the real
parser Dokploy uses (npm `dotenv` 16.4.5, see tests/support/dotenv_real.py) and against the
answers of a real Dokploy v0.30.2 server (tests/contracts/dokploy-real-v0.30.2/tricky-env.json).

The Python port of the parser (`desired_state.dotenv.parse`) reads observed env text and
runs in the Dokploy emulator's deploys; here it is held to the real parser too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desired_state.dotenv import carry_problem
from desired_state.dotenv import parse as port_parse
from desired_state.secrets import carry_rules
from providers.dokploy.envfile import merge, parse
from tests.support.dotenv_real import RealDotenv, dotenv_package

TRICKY = json.loads(
    (
        Path(__file__).resolve().parents[2] / "contracts/dokploy-real-v0.30.2/tricky-env.json"
    ).read_text()
)
KEYS: list[dict[str, Any]] = TRICKY["keys"]
DIFFERENT_ON_THE_SERVER = {k["key"] for k in KEYS if not k["container_gets_desired"]}

# Characters the parser treats specially, beside any other text.
_SPECIAL = st.sampled_from([*"'\"`\\#=$:{} \t\n\rnrx", "\\n", "${{", "\u2028", "\u00a0"])
_ANY = st.characters(codec="utf-8")  # no lone surrogates
VALUES = st.lists(st.one_of(_SPECIAL, _ANY), max_size=12).map("".join)


@pytest.fixture(scope="module")
def dotenv() -> Iterator[RealDotenv]:
    real = RealDotenv(dotenv_package())
    yield real
    real.close()


def test_values_a_real_server_changed_now_reach_the_service_as_written(dotenv: RealDotenv) -> None:
    """On the old encoding, 6 of these arrived different (`say \\"hi\\"`, `C:\\\\path`, ...)."""
    carried = {k["key"]: k["desired"] for k in KEYS if carry_problem(k["desired"]) is None}
    assert set(DIFFERENT_ON_THE_SERVER) - set(carried) == {"T_TEMPLATE"}  # refused by name
    text = merge(TRICKY["stored_env_text"], carried)
    (service_gets,) = dotenv.parse([text])
    assert {key: service_gets[key] for key in carried} == carried


def test_setpoint_reads_env_text_as_the_real_server_did() -> None:
    """The recorded server text parses, through Setpoint's reader, to what Dokploy's deploy
    made of it; so a plan shows drift where the service holds something else."""
    observed = parse(TRICKY["stored_env_text"])
    assert {k["key"]: observed[k["key"]] for k in KEYS} == {
        k["key"]: k["dokploy_dotenv_parse"] for k in KEYS
    }
    drifted = {k["key"] for k in KEYS if observed[k["key"]] != k["desired"]}
    assert drifted == DIFFERENT_ON_THE_SERVER - {"T_TEMPLATE"}  # the template parses as is


def test_a_template_reference_is_refused_by_reason_not_by_value() -> None:
    problem = carry_problem("prefix ${{project.DB_URL}}")
    assert problem is not None and "${{" in problem and "DB_URL" not in problem


@settings(max_examples=150, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=16))
def test_every_value_validate_accepts_round_trips_through_real_dotenv(
    dotenv: RealDotenv, values: list[str]
) -> None:
    env = {f"V{i}": v for i, v in enumerate(values)}
    refused = {path[0] for path, _ in carry_rules(env)}  # what `setpoint validate` refuses
    accepted = {key: v for key, v in env.items() if key not in refused}
    text = merge("# operator's\nOTHER='kept'\n", accepted)
    (service_gets,) = dotenv.parse([text])
    assert service_gets == {"OTHER": "kept", **accepted}
    assert port_parse(text) == service_gets


_TEXT_LINES = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["A", "B", " export C", "D.e-f", "1"]), VALUES).map(
            lambda kv: f"{kv[0]}{'=' if kv[0] != 'D.e-f' else ': '}{kv[1]}"
        ),
        VALUES,
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TEXT_LINES.map("\n".join), min_size=1, max_size=8))
def test_the_port_agrees_with_real_dotenv_on_any_text(dotenv: RealDotenv, texts: list[str]) -> None:
    assert [port_parse(text) for text in texts] == dotenv.parse(texts)


def test_a_missing_real_parser_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SETPOINT_TEST_DOTENV_DIR", str(tmp_path))  # no dotenv in it
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"holds no dotenv 16\.4\.5"):
        dotenv_package()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        dotenv_package()
