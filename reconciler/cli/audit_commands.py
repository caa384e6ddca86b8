"""`setpoint audit ...`: read, check and export the hash-chained audit log."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.presentation.tables import Column, Role
from reconciler.records.audit_events import AuditEvent

# The events by name, listed in the help text where they wrap between names.
EVENT_HELP = f"Only this event: {', '.join(AuditEvent)}."

if TYPE_CHECKING:
    from sqlmodel import Session

    from reconciler.records.audit import AuditRecord

app = typer.Typer(help="The audit log: list, show, verify and export.", no_args_is_help=True)


# seq is what `audit show` needs, and lane and plan are what the filters take: never cut.
AUDIT_COLUMNS = (
    Column("seq", Role.identifier),
    Column("time (UTC)", Role.lesser),
    Column("actor", Role.lesser),
    Column("event"),
    Column("lane", Role.identifier),
    Column("plan", Role.identifier),
    Column("summary", Role.flexible),
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"


def summary(data: dict[str, Any], width: int = 60) -> str:
    """One line for a table cell: the data's top-level keys and short values."""
    parts = []
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={shown}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _session() -> Session:
    from sqlmodel import Session

    return Session(context.ready_engine())


def _time(row: AuditRecord) -> str:
    return row.at.strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_(
    lane: str | None = typer.Option(None, "--lane", help="Only this lane, e.g. shop/prod."),
    plan: str | None = typer.Option(None, "--plan", help="Only records of this plan id."),
    event: AuditEvent | None = typer.Option(None, "--event", metavar="EVENT", help=EVENT_HELP),
    limit: int = typer.Option(50, "--limit", min=1, help="Show the newest N records."),
    output: OutputFormat = OUTPUT_OPTION,
    wide: bool = typer.Option(False, "--wide", help="Every column, and summaries uncut."),
) -> None:
    """The newest audit records, oldest first."""
    from reconciler.records import audit as log

    with _session() as session:
        rows = log.list_records(session, lane=lane, plan_id=plan, event=event, limit=limit)
    if output == OutputFormat.json:
        print_json([log.record_dict(row) for row in rows])
        return
    if not rows:
        console.print("no audit records match")
        return
    from reconciler.presentation.tables import fit_table

    cells = [
        [
            str(row.seq),
            _time(row),
            escape(row.actor),
            row.event,
            escape(row.lane or ""),
            row.plan_id or "",
            escape(summary(row.data, width=10_000 if wide else 60)),
        ]
        for row in rows
    ]
    fit_table(console, AUDIT_COLUMNS, cells, wide=wide).print(console, wide=wide)


@app.command("show")
def show(
    seq: int = typer.Argument(..., help="The record's sequence number."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """One audit record in full."""
    from reconciler.records import audit as log

    with _session() as session:
        row = log.get_record(session, seq)
    if row is None:
        raise fail(f"there is no audit record {seq}")
    shown = log.record_dict(row)
    if output == OutputFormat.json:
        print_json(shown)
        return
    for key in ("seq", "at", "actor", "event", "lane", "plan_id", "action_id"):
        if shown[key] is not None:
            console.print(f"[bold]{key}[/]: {shown[key]}", highlight=False)
    console.print("[bold]data[/]:")
    console.print_json(data=row.data)
    console.print(f"[bold]prev_hash[/]: {row.prev_hash}\n[bold]hash[/]: {row.hash}")


@app.command("verify")
def verify(
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="A checkpoint from `setpoint audit checkpoint`: also prove that nothing up to it "
        "was removed or rewritten since (needs SETPOINT_AUDIT_KEY). Default: the newest in "
        "SETPOINT_AUDIT_CHECKPOINT_PATH, when it is set.",
    ),
) -> None:
    """Recompute the chain; exit 1 and say where when a record was edited, removed or moved."""
    from reconciler.records import audit as log
    from reconciler.records import checkpoint as anchor

    loaded = None
    checkpoint = checkpoint or _newest_checkpoint()
    if checkpoint is not None:
        loaded = anchor.load(_read(checkpoint), _audit_key())
    with _session() as session:
        if loaded is None:
            result = log.verify_chain(session)
        else:
            result = anchor.verify_against(session, loaded)
    if not result.ok:
        where = "" if result.first_bad_seq is None else f" at record {result.first_bad_seq}"
        raise fail(f"audit chain broken{where}: {result.reason}")
    if loaded is None:
        console.print(
            f"audit chain ok: {result.checked} record(s) verified "
            "(without a checkpoint, removal from the end or a rebuilt trail cannot be seen)"
        )
        return
    console.print(
        f"audit chain ok: {result.checked} record(s) verified; record {loaded.seq} matches "
        f"the checkpoint of {loaded.at} ({escape(str(checkpoint))})"
    )


def _newest_checkpoint() -> Path | None:
    """The newest automatic checkpoint, when the settings name a place for them."""
    from reconciler.records.checkpoint import newest

    place = context.settings().audit_checkpoint_path
    return newest(place) if place is not None else None


@app.command("keygen")
def keygen() -> None:
    """Print a new audit key (set it as SETPOINT_AUDIT_KEY, kept outside the database)."""
    from reconciler.records.checkpoint import generate_key

    sys.stdout.write(generate_key() + "\n")


@app.command("checkpoint")
def checkpoint_(
    out: Path = typer.Option(..., "--out", help="Write the signed checkpoint here."),
) -> None:
    """Sign the current head with SETPOINT_AUDIT_KEY; keep the file away from the database."""
    from reconciler.records import checkpoint as anchor
    from reconciler.runtime import utcnow

    if not out.parent.is_dir():
        raise fail(f"cannot write the checkpoint to {out}: there is no folder {out.parent}")
    key = _audit_key()
    with _session() as session:
        signed = anchor.take(session, key, utcnow())
    out.write_text(json.dumps(signed, indent=2) + "\n", encoding="utf-8")
    console.print(f"checkpoint of record {signed['seq']} written to {out}")


@app.command("repair-head")
def repair_head() -> None:
    """Recreate a lost audit head at the last record, once the records verify; audited."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit as log
    from reconciler.runtime import utcnow

    row = log.repair_head(context.ready_engine(), default_actor(), utcnow())
    console.print(
        f"audit head recreated at record {row.data['seq']}; the repair is record {row.seq}"
    )


def _audit_key() -> str:
    settings = context.settings()
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value()
    if settings.audit_key_file is not None:
        return _read(settings.audit_key_file).strip()
    raise fail(
        "SETPOINT_AUDIT_KEY (or SETPOINT_AUDIT_KEY_FILE) is not set: make a key with "
        "`setpoint audit keygen` and keep it outside the database"
    )


def _read(path: Path) -> str:
    if not path.is_file():
        raise fail(f"there is no file {path}")
    return path.read_text(encoding="utf-8")


@app.command("export")
def export(
    format_: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl"),
    out: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    lane: str | None = typer.Option(None, "--lane"),
    plan: str | None = typer.Option(None, "--plan"),
    event: AuditEvent | None = typer.Option(None, "--event", metavar="EVENT", help=EVENT_HELP),
) -> None:
    """Every matching record as one JSON object per line, with its hashes, oldest first."""
    from reconciler.records import audit as log

    if out is not None and not out.parent.is_dir():
        raise fail(f"cannot write the export to {out}: there is no folder {out.parent}")
    with _session() as session:
        if out is None:
            log.export_jsonl(session, sys.stdout, lane=lane, plan_id=plan, event=event)
            return
        with out.open("w", encoding="utf-8") as handle:
            count = log.export_jsonl(session, handle, lane=lane, plan_id=plan, event=event)
    console.print(f"wrote {count} record(s) to {out}")
