"""An audit trail that cannot be quietly rewound (issue 12, items 7 and 8).

The chain alone cannot see records removed from the end with the head rolled back, a
record rewritten with every later hash recomputed, or a wiped trail: each is a consistent
chain. A signed checkpoint kept outside the database sees all three. A lost head is
reported as lost, and only `audit repair-head` recreates it, on the trail.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from reconciler.loop.passes import reconcile_pass
from reconciler.records import audit
from reconciler.records.audit import GENESIS_HASH, AuditHead, AuditRecord, record_hash
from reconciler.records.audit_events import AuditEvent
from reconciler.runtime import Runtime, utcnow
from tests.support.cli import Invoke

KEY = "k" * 40


@pytest.fixture
def anchored(setpoint: Invoke, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("SETPOINT_AUDIT_KEY", KEY)
    for n in range(5):
        audit.record(
            engine, event=AuditEvent.plan_computed, actor="alice", data={"n": n}, at=utcnow()
        )
    return setpoint


def _checkpoint(setpoint: Invoke, tmp_path: Path) -> Path:
    out = tmp_path / "checkpoint.json"
    result = setpoint("audit", "checkpoint", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "checkpoint of record 5" in result.stdout
    return out


def _rehash_from(engine: Engine, seq: int) -> None:
    """Recompute every hash from `seq` on, and the head: a careful forger's rewrite."""
    with Session(engine) as session:
        rows = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq))).all()
        prev = GENESIS_HASH
        for row in rows:
            if row.seq >= seq:
                row.prev_hash = prev
                row.hash = record_hash(prev, row)
                session.add(row)
            prev = row.hash
        head = session.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = (rows[-1].seq, prev) if rows else (0, GENESIS_HASH)
        session.add(head)
        session.commit()


def _verify(setpoint: Invoke, checkpoint: Path | None = None) -> tuple[int, str]:
    args = ["audit", "verify"] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
    result = setpoint(*args)
    return result.exit_code, result.output


def test_deleting_the_tail_and_rolling_back_the_head_fails_against_a_checkpoint(
    anchored: Invoke, engine: Engine, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(anchored, tmp_path)
    with engine.begin() as db:
        db.execute(sa.delete(AuditRecord).where(col(AuditRecord.seq) > 3))
    _rehash_from(engine, 4)  # the head rolled back to record 3

    assert _verify(anchored)[0] == 0  # the chain alone cannot see it
    code, output = _verify(anchored, checkpoint)
    assert code == 1
    assert "the trail ends at record 3" in output and "vouches for record 5" in output
    assert "Traceback" not in output


def test_rewriting_a_record_and_every_later_hash_fails_against_a_checkpoint(
    anchored: Invoke, engine: Engine, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(anchored, tmp_path)
    with engine.begin() as db:
        db.execute(sa.update(AuditRecord).where(col(AuditRecord.seq) == 2).values(actor="mallory"))
    _rehash_from(engine, 2)

    assert _verify(anchored)[0] == 0
    code, output = _verify(anchored, checkpoint)
    assert code == 1 and "record 5 differs from the checkpoint" in output
    assert "rewritten" in output


def test_wiping_the_trail_fails_against_a_checkpoint(
    anchored: Invoke, engine: Engine, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(anchored, tmp_path)
    with engine.begin() as db:
        db.execute(sa.delete(AuditRecord))
        db.execute(sa.delete(AuditHead))

    assert _verify(anchored)[0] == 0
    code, output = _verify(anchored, checkpoint)
    assert code == 1 and "the trail ends at record 0" in output and "wiped" in output


def test_an_intact_trail_verifies_against_an_older_checkpoint(
    anchored: Invoke, engine: Engine, tmp_path: Path
) -> None:
    checkpoint = _checkpoint(anchored, tmp_path)
    audit.record(engine, event=AuditEvent.plan_computed, actor="bob", at=utcnow())

    code, output = _verify(anchored, checkpoint)
    assert code == 0, output
    assert "6 record(s) verified; record 5 matches the checkpoint" in output


def test_a_forged_or_foreign_checkpoint_is_refused(
    anchored: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = _checkpoint(anchored, tmp_path)
    forged = json.loads(checkpoint.read_text())
    forged["seq"] = 3
    checkpoint.write_text(json.dumps(forged))
    code, output = _verify(anchored, checkpoint)
    assert code == 1 and "signature does not match" in output

    monkeypatch.setenv("SETPOINT_AUDIT_KEY", "x" * 40)
    code, output = _verify(anchored, _checkpoint_with(anchored, tmp_path, KEY, monkeypatch))
    assert code == 1 and "signature does not match" in output


def _checkpoint_with(
    setpoint: Invoke, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    with monkeypatch.context() as patch:
        patch.setenv("SETPOINT_AUDIT_KEY", key)
        out = tmp_path / "other.json"
        assert setpoint("audit", "checkpoint", "--out", str(out)).exit_code == 0
    return out


def test_checkpoint_needs_a_key_kept_outside_the_database(
    setpoint: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SETPOINT_AUDIT_KEY", raising=False)
    result = setpoint("audit", "checkpoint", "--out", str(tmp_path / "c.json"))
    assert result.exit_code == 1 and "SETPOINT_AUDIT_KEY" in result.stderr
    key_file = tmp_path / "audit.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("SETPOINT_AUDIT_KEY_FILE", str(key_file))
    result = setpoint("audit", "checkpoint", "--out", str(tmp_path / "c.json"))
    assert result.exit_code == 0, result.output
    assert KEY not in (tmp_path / "c.json").read_text()


# -- item 7: a lost head ----------------------------------------------------------------


def test_a_lost_head_is_reported_as_lost_and_blocks_writes(
    anchored: Invoke, engine: Engine
) -> None:
    with engine.begin() as db:
        db.execute(sa.delete(AuditHead))

    code, output = _verify(anchored)
    assert code == 1 and "the audit head is lost" in output
    assert "removed from the end" not in output
    with pytest.raises(Exception, match="audit head is lost"):
        audit.record(engine, event=AuditEvent.plan_computed, actor="alice", at=utcnow())
    with Session(engine) as session:  # nothing was re-chained from genesis
        assert session.get(AuditHead, 1) is None


def test_only_an_explicit_audited_repair_recreates_the_head(
    anchored: Invoke, engine: Engine
) -> None:
    with engine.begin() as db:
        db.execute(sa.delete(AuditHead))

    result = anchored("audit", "repair-head")
    assert result.exit_code == 0, result.output
    assert "recreated at record 5; the repair is record 6" in result.stdout
    assert _verify(anchored)[0] == 0
    shown = json.loads(anchored("audit", "show", "6", "-o", "json").stdout)
    assert shown["event"] == "audit_head_repaired" and shown["data"]["seq"] == 5

    again = anchored("audit", "repair-head")
    assert again.exit_code == 1 and "nothing to repair" in again.stderr


def test_repair_refuses_a_damaged_trail(anchored: Invoke, engine: Engine) -> None:
    with engine.begin() as db:
        db.execute(sa.delete(AuditHead))
        db.execute(sa.update(AuditRecord).where(col(AuditRecord.seq) == 2).values(actor="mallory"))
    result = anchored("audit", "repair-head")
    assert result.exit_code == 1
    assert "record 2 does not verify" in result.stderr and "Traceback" not in result.output


# -- issue 28 item 8: checkpoints taken automatically ------------------------------------


async def test_a_pass_anchors_the_trail_and_verify_sees_the_tail_truncated_after_it(
    runtime: Runtime,
    setpoint: Invoke,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    place = tmp_path / "checkpoints"
    place.mkdir()
    settings = runtime.settings.model_copy(
        update={
            "audit_key": SecretStr(KEY),
            "audit_checkpoint_path": place,
            "audit_checkpoint_keep": 2,
        }
    )
    anchored_runtime = dataclasses.replace(runtime, settings=settings)
    for _ in range(3):
        await reconcile_pass(anchored_runtime)
    files = sorted(place.glob("checkpoint-*.json"))
    assert len(files) == 2  # rotated: the newest two kept
    newest = json.loads(files[-1].read_text())
    with Session(engine) as session:
        assert newest["seq"] == audit.head_seq(session)  # the pass's own record included
    assert KEY not in files[-1].read_text()

    monkeypatch.setenv("SETPOINT_AUDIT_KEY", KEY)
    monkeypatch.setenv("SETPOINT_AUDIT_CHECKPOINT_PATH", str(place))
    code, output = _verify(setpoint)  # the newest checkpoint, without naming it
    assert code == 0 and f"record {newest['seq']} matches the checkpoint" in output, output

    last = newest["seq"]
    with engine.begin() as db:
        db.execute(sa.delete(AuditRecord).where(col(AuditRecord.seq) > last - 2))
    _rehash_from(engine, last - 2)  # the tail cut and the head rolled back with it
    monkeypatch.delenv("SETPOINT_AUDIT_CHECKPOINT_PATH")
    assert _verify(setpoint)[0] == 0  # the chain alone cannot see it
    monkeypatch.setenv("SETPOINT_AUDIT_CHECKPOINT_PATH", str(place))
    code, output = _verify(setpoint)
    assert code == 1 and f"vouches for record {last}" in output, output


def test_setpoint_apply_anchors_the_trail_in_a_file(
    setpoint: Invoke, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = tmp_path / "head.json"
    monkeypatch.setenv("SETPOINT_AUDIT_KEY", KEY)
    monkeypatch.setenv("SETPOINT_AUDIT_CHECKPOINT_PATH", str(place))
    monkeypatch.setenv("SETPOINT_DOKPLOY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SETPOINT_DOKPLOY_API_KEY", "unused-key")
    audit.record(engine, event=AuditEvent.plan_computed, actor="alice", at=utcnow())
    result = setpoint("apply", "plan-000000000000")
    assert result.exit_code == 1 and "no plan" in result.stderr
    assert json.loads(place.read_text())["seq"] == 1
    assert _verify(setpoint)[0] == 0
