"""Env text round-trips and merges without touching what Setpoint does not own."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desired_state.dotenv import carry_problem
from providers.dokploy.envfile import EnvFile, merge, parse, render_pair

KEYS = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)
# Values Dokploy's parser can carry; the rest are refused by desired state.
VALUES = st.text(st.characters(codec="utf-8"), max_size=30).filter(
    lambda v: carry_problem(v) is None
)
PAIRS = st.tuples(KEYS, VALUES).map(lambda kv: render_pair(*kv))
COMMENTS = st.from_regex(r"# [a-z ]{0,20}", fullmatch=True)


def test_merge_changes_only_owned_keys_and_keeps_comments_and_order() -> None:
    existing = "# managed by hand\nA=1\n\nOPERATOR_KEY=keep me\n# tail comment\nB=2\n"
    merged = merge(existing, {"A": "10", "C": "new"}, removed_keys=["B"])
    assert merged == "# managed by hand\nA=10\n\nOPERATOR_KEY=keep me\n# tail comment\nC=new\n"


def test_unchanged_owned_value_keeps_the_operators_spelling() -> None:
    existing = "export A='1'\n"
    assert merge(existing, {"A": "1"}) == existing


def test_duplicate_owned_key_collapses_to_one_line_at_the_first_place() -> None:
    assert merge("A=1\nX=y\nA=2\n", {"A": "3"}) == "A=3\nX=y\n"


def test_quoted_values_and_inline_equals_parse() -> None:
    text = "A=\"line1\\nline2\"\nB=x=y\nC='lit # not comment'\n#D=commented\nnot a pair\n"
    assert parse(text) == {"A": "line1\nline2", "B": "x=y", "C": "lit # not comment"}


def test_merge_into_empty_text() -> None:
    assert merge(None, {"A": "a b", "B": " padded"}) == "A=a b\nB=' padded'\n"
    assert merge("", {}) == ""


def test_invalid_owned_key_is_refused_without_echoing_values() -> None:
    with pytest.raises(ValueError, match="BAD KEY") as caught:
        merge("", {"BAD KEY": "secret-value"})
    assert "secret-value" not in str(caught.value)


def test_repr_shows_keys_never_values() -> None:
    doc = EnvFile.parse("TOKEN=hunter2\n")
    assert "hunter2" not in repr(doc) and "TOKEN" in repr(doc)
    assert "hunter2" not in repr(doc.lines)


@given(KEYS, VALUES)
def test_rendered_pair_parses_back_to_the_same_value(key: str, value: str) -> None:
    assert parse(render_pair(key, value)) == {key: value}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.tuples(KEYS, VALUES).map(lambda kv: render_pair(*kv)), COMMENTS, st.just(""))
    ),
    st.dictionaries(KEYS, VALUES, max_size=4),
    st.lists(KEYS, max_size=3),
)
def test_merge_properties(lines: list[str], owned: dict[str, str], removed: list[str]) -> None:
    existing = "\n".join(lines) + "\n"
    merged = merge(existing, owned, removed)
    result = parse(merged)
    before = parse(existing)
    for key, value in owned.items():
        assert result[key] == value
    for key in set(removed) - set(owned):
        assert key not in result
    for key, value in before.items():
        if key not in owned and key not in removed:
            assert result[key] == value
    # Comments and blank lines survive in their order.
    kept = [ln.raw for ln in EnvFile.parse(existing).lines if ln.key is None]
    assert [ln.raw for ln in EnvFile.parse(merged).lines if ln.key is None] == kept
    assert merge(merged, owned, removed) == merged  # idempotent
