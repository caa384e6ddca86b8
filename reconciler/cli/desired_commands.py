"""`setpoint desired ...`: store, list and show desired-state objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, fail, print_json
from reconciler.records.audit_events import AuditEvent

app = typer.Typer(help="Desired state: store, list and show objects.", no_args_is_help=True)

_STYLE = {
    "created": "green",
    "changed": "yellow",
    "unchanged": "dim",
    "removed": "red",
    "would_remove": "magenta",
}


@app.command("apply")
def apply(
    path: Path = typer.Argument(..., help="A YAML file or a directory of them."),
    prune: bool = typer.Option(
        False, help="Remove stored objects PATH no longer declares; lists them and asks first."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --prune: remove without asking."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate against the store and show what would change."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Store desired state. Validates everything first; stores nothing if anything is invalid.

    PATH is validated together with what is stored (a file's object replaces the stored one
    of the same kind and name), so one file can be applied on its own.
    """
    from desired_state.issues import InvalidDesiredState
    from reconciler.records.database import session_scope
    from reconciler.records.desired import apply_documents, list_objects, preview_documents
    from reconciler.runtime import utcnow

    engine = context.ready_engine()
    with session_scope(engine) as session:
        rows = list_objects(session)
    documents = _load(path, rows, prune=prune, output=output)
    if prune and not documents:
        raise fail(
            f"--prune with no documents in {path} would remove everything stored; nothing removed"
        )
    preview = preview_documents(rows, documents, prune=prune)
    if dry_run:
        _print_report(preview.entries, output, dry_run=True)
        return
    _confirm_removals(preview.entries, yes=yes)
    now = utcnow()  # a command with no runtime: the wall clock
    try:
        with session_scope(engine) as session:
            report = apply_documents(session, documents, prune=prune, now=now)
    except InvalidDesiredState as exc:  # the store's own check: nothing was stored
        for issue in exc.issues:
            errors.print(str(issue), highlight=False, markup=False)
        raise fail(f"{len(exc.issues)} problem(s) found; nothing stored") from None
    _audit(engine, report.entries, now)
    _print_report(report.entries, output, dry_run=False)


def _load(path: Path, rows: list[Any], *, prune: bool, output: OutputFormat) -> list[Any]:
    """Validate PATH beside what is stored (with --prune, PATH is all there will be)."""
    from desired_state.issues import InvalidDesiredState
    from desired_state.loader import StoredDocument, scan_path
    from reconciler.cli.validate_commands import print_skipped
    from reconciler.secret_sources import secret_sources

    stored = [StoredDocument(r.kind, r.name, r.spec, r.source_file) for r in rows]
    try:
        scan = scan_path(path, () if prune else stored, sources=secret_sources(context.settings()))
    except InvalidDesiredState as exc:
        for issue in exc.issues:
            errors.print(str(issue), highlight=False, markup=False)
        raise fail(f"{len(exc.issues)} problem(s) found; nothing stored") from None
    print_skipped(scan.skipped, errors if output is OutputFormat.json else console)
    return scan.documents


def _confirm_removals(entries: Sequence[tuple[str, str, int]], *, yes: bool) -> None:
    """List what --prune would remove and ask; a script passes --yes."""
    import click

    removals = [key for key, outcome, _ in entries if outcome == "removed"]
    if not removals or yes:
        return
    errors.print(f"--prune would remove {len(removals)} stored object(s):", highlight=False)
    for key in removals:
        errors.print(f"  {key}", highlight=False, markup=False)
    try:
        confirmed = typer.confirm("Remove them?", default=False, err=True)
    except click.exceptions.Abort:
        confirmed = False
    if not confirmed:
        raise fail("nothing stored or removed; pass --yes to remove without asking")


def _audit(engine: Any, entries: Sequence[tuple[str, str, int]], now: datetime) -> None:
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit

    if not any(o in ("created", "changed", "removed") for _, o, _ in entries):
        return
    audit.record(
        engine,
        event=AuditEvent.desired_applied,
        actor=default_actor(),
        data={
            outcome: [key for key, o, _ in entries if o == outcome]
            for outcome in ("created", "changed", "removed")
        },
        at=now,
    )


def _print_report(
    entries: Sequence[tuple[str, str, int]], output: OutputFormat, *, dry_run: bool
) -> None:
    if output is OutputFormat.json:
        rows: list[dict[str, Any]] = [
            {"object": key, "result": outcome, "generation": generation}
            for key, outcome, generation in entries
        ]
        print_json([{**row, "dryRun": True} for row in rows] if dry_run else rows)
        return
    for key, outcome, generation in entries:
        style = _STYLE[outcome]
        label = "would remove (use --prune)" if outcome == "would_remove" else outcome
        if dry_run and outcome in ("created", "changed", "removed"):
            label = f"would be {outcome}"
        console.print(f"[{style}]{label:>10}[/] {key} (generation {generation})")
    counts = {o: sum(1 for _, x, _ in entries if x == o) for o in _STYLE}
    summary = (
        f"{counts['created']} created, {counts['changed']} changed, "
        f"{counts['unchanged']} unchanged, {counts['removed']} removed"
    )
    console.print(f"dry run, nothing stored: would be {summary}" if dry_run else summary)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, help="Only this kind."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List stored desired objects."""
    from reconciler.records.database import session_scope
    from reconciler.records.desired import list_objects

    with session_scope(context.ready_engine()) as session:
        rows = list_objects(session, kind)
    if output is OutputFormat.json:
        print_json(
            [
                {
                    "kind": r.kind,
                    "name": r.name,
                    "generation": r.generation,
                    "specHash": r.spec_hash,
                    "source": r.source_file,
                    "updatedAt": r.updated_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    from rich.markup import escape

    from reconciler.presentation.tables import Column, Role, fit_table

    columns = (
        Column("KIND"),
        Column("NAME", Role.identifier),
        Column("GEN"),
        Column("UPDATED (UTC)", Role.lesser),
        Column("SOURCE", Role.flexible),
    )
    cells = [
        [
            r.kind,
            escape(r.name),
            str(r.generation),
            f"{r.updated_at:%Y-%m-%d %H:%M:%S}",
            escape(r.source_file or "-"),
        ]
        for r in rows
    ]
    fit_table(console, columns, cells, wide=False, wide_option=None).print(console, wide=False)


@app.command("show")
def show(
    ref: str = typer.Argument(..., metavar="KIND/NAME", help="For example Product/shop."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show one stored object with its spec."""
    from reconciler.records.database import session_scope
    from reconciler.records.desired import get_object

    kind, sep, name = ref.partition("/")
    if not sep or not name:
        raise fail(f"expected KIND/NAME such as Product/shop, got {ref!r}", code=2)
    with session_scope(context.ready_engine()) as session:
        row = get_object(session, kind, name)
    if row is None:
        raise fail(f"{ref} is not in the desired state")
    data = {
        "kind": row.kind,
        "name": row.name,
        "generation": row.generation,
        "specHash": row.spec_hash,
        "source": row.source_file,
        "updatedAt": row.updated_at.isoformat(),
        "spec": row.spec,
    }
    if output is OutputFormat.json:
        print_json(data)
    else:
        from ruamel.yaml import YAML

        YAML().dump(data, console.file)
