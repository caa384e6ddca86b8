"""Storing desired state: generations move only when a spec changes; removal needs prune."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from desired_state.document import spec_hash
from desired_state.loader import load_path
from desired_state.product import ProductSpec
from reconciler.errors import EmptyPrune
from reconciler.fleet import DesiredFleet, load_fleet
from reconciler.records.database import session_scope
from reconciler.records.desired import (
    DocumentChange,
    apply_documents,
    get_object,
    list_objects,
    preview_documents,
)
from reconciler.runtime import utcnow
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import store_fleet


def copy_examples(tmp_path: Path) -> Path:
    target = tmp_path / "fleet"
    target.mkdir()
    for file in (EXAMPLES / "fleet").glob("*.yaml"):
        (target / file.name).write_text(file.read_text())
    return target


def generations(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {row.key: row.generation for row in list_objects(session)}


def test_second_apply_changes_nothing(engine: Engine) -> None:
    documents = load_path(EXAMPLES)
    with session_scope(engine) as session:
        first = apply_documents(session, documents, prune=False, now=utcnow())
    assert first.count(DocumentChange.created) == len(documents)
    before = generations(engine)
    with session_scope(engine) as session:
        second = apply_documents(session, load_path(EXAMPLES), prune=False, now=utcnow())
    assert second.count(DocumentChange.unchanged) == len(documents) and not second.changed_anything
    assert generations(engine) == before


def test_editing_one_lane_bumps_only_that_products_generation(
    engine: Engine, tmp_path: Path
) -> None:
    fleet = copy_examples(tmp_path)
    with session_scope(engine) as session:
        apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    before = generations(engine)
    shop = fleet / "shop.yaml"
    shop.write_text(shop.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    with session_scope(engine) as session:
        report = apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    after = generations(engine)
    assert [key for key, outcome, _ in report.entries if outcome == "changed"] == ["Product/shop"]
    assert after["Product/shop"] == before["Product/shop"] + 1
    assert {k: v for k, v in after.items() if k != "Product/shop"} == {
        k: v for k, v in before.items() if k != "Product/shop"
    }
    with session_scope(engine) as session:
        stored = get_object(session, "Product", "shop")
        assert stored is not None
        assert stored.spec["lanes"][0]["env"] == {"LOG_LEVEL": "trace"}


def test_comment_only_edit_is_not_a_change(engine: Engine, tmp_path: Path) -> None:
    fleet = copy_examples(tmp_path)
    with session_scope(engine) as session:
        apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    shop = fleet / "shop.yaml"
    shop.write_text("# reviewed by ops\n" + shop.read_text())
    with session_scope(engine) as session:
        report = apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    assert not report.changed_anything


def test_removed_objects_are_deleted_only_with_prune(engine: Engine, tmp_path: Path) -> None:
    fleet = copy_examples(tmp_path)
    with session_scope(engine) as session:
        apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    (fleet / "docs-site.yaml").unlink()
    with session_scope(engine) as session:
        report = apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    assert ("Product/docs-site", "would_remove", 1) in report.entries
    assert "Product/docs-site" in generations(engine)
    with session_scope(engine) as session:
        report = apply_documents(session, load_path(fleet), prune=True, now=utcnow())
    assert ("Product/docs-site", "removed", 1) in report.entries
    assert "Product/docs-site" not in generations(engine)


def test_prune_against_no_documents_is_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        apply_documents(session, load_path(EXAMPLES), prune=False, now=utcnow())
    with pytest.raises(EmptyPrune), session_scope(engine) as session:
        apply_documents(session, [], prune=True, now=utcnow())
    assert len(generations(engine)) == 7


def test_preview_says_what_apply_would_do_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    fleet = copy_examples(tmp_path)
    with session_scope(engine) as session:
        apply_documents(session, load_path(fleet), prune=False, now=utcnow())
    (fleet / "docs-site.yaml").unlink()
    shop = fleet / "shop.yaml"
    shop.write_text(shop.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    with session_scope(engine) as session:
        rows = list_objects(session)
    preview = preview_documents(rows, load_path(fleet), prune=True)
    with session_scope(engine) as session:
        applied = apply_documents(session, load_path(fleet), prune=True, now=utcnow())
    assert preview.entries == applied.entries
    assert ("Product/docs-site", "removed", 1) in preview.entries


def stored_and_read(engine: Engine, path: Path) -> DesiredFleet:
    """Store the fleet at `path` (without pruning) and read it back as a pass does."""
    store_fleet(engine, path)
    return load_fleet(engine)


def _lane_env(engine: Engine, product: str) -> dict[str, str]:
    spec = load_fleet(engine).documents[f"Product/{product}"].spec
    assert isinstance(spec, ProductSpec)
    return dict(spec.lanes[0].env)


def test_the_fleet_read_again_holds_each_edit_and_only_its_generation_moves(
    engine: Engine, tmp_path: Path
) -> None:
    fleet = copy_examples(tmp_path)
    first = stored_and_read(engine, fleet)
    assert load_fleet(engine) == first  # read twice, unchanged: the very same fleet
    shop = fleet / "shop.yaml"
    shop.write_text(shop.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    edited = stored_and_read(engine, fleet)
    assert _lane_env(engine, "shop") == {"LOG_LEVEL": "trace"}
    assert edited.revision != first.revision
    assert edited.generations == {
        **first.generations,
        "Product/shop": first.generations["Product/shop"] + 1,
    }
    assert {k: d for k, d in edited.documents.items() if k != "Product/shop"} == {
        k: d for k, d in first.documents.items() if k != "Product/shop"
    }


def test_a_stored_spec_edited_out_of_validity_fails_the_read_after_a_good_one(
    engine: Engine,
) -> None:
    stored_and_read(engine, EXAMPLES)  # every stored document parsed, and remembered
    with session_scope(engine) as session:  # a hand edit of the stored shop
        row = get_object(session, "Product", "shop")
        assert row is not None
        row.spec = {**row.spec, "replica": 2}
        row.spec_hash = spec_hash(row.spec)
        session.add(row)
    with pytest.raises(ValidationError):
        load_fleet(engine)
