"""`setpoint desired ...`: store, list and show desired-state objects."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

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
    prune: bool = typer.Option(False, help="Remove stored objects PATH no longer declares."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Store desired state. Validates everything first; stores nothing if anything is invalid."""
    from desired_state.issues import InvalidDesiredState
    from desired_state.loader import load_path
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit
    from reconciler.records.database import session_scope
    from reconciler.records.desired import apply_documents

    try:
        documents = load_path(path)
        engine = context.ready_engine()
        with session_scope(engine) as session:  # checked against what is stored, too
            report = apply_documents(session, documents, prune=prune)
    except InvalidDesiredState as exc:
        for issue in exc.issues:
            errors.print(str(issue), highlight=False, markup=False)
        raise fail(f"{len(exc.issues)} problem(s) found; nothing stored") from None
    if report.changed_anything:
        audit.record(
            engine,
            event=AuditEvent.desired_applied,
            actor=default_actor(),
            data={
                outcome: [key for key, o, _ in report.entries if o == outcome]
                for outcome in ("created", "changed", "removed")
            },
        )
    if output is OutputFormat.json:
        print_json(
            [
                {"object": key, "result": outcome, "generation": generation}
                for key, outcome, generation in report.entries
            ]
        )
        return
    for key, outcome, generation in report.entries:
        style = _STYLE[outcome]
        label = "would remove (use --prune)" if outcome == "would_remove" else outcome
        console.print(f"[{style}]{label:>10}[/] {key} (generation {generation})")
    console.print(
        f"{report.count('created')} created, {report.count('changed')} changed, "
        f"{report.count('unchanged')} unchanged, {report.count('removed')} removed"
    )


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
    table = Table("KIND", "NAME", "GENERATION", "SOURCE", "UPDATED")
    for r in rows:
        table.add_row(
            r.kind, r.name, str(r.generation), r.source_file, f"{r.updated_at:%Y-%m-%d %H:%M:%S}"
        )
    console.print(table)


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
