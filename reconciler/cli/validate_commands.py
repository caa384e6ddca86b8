"""`setpoint validate` and `setpoint schema`: check desired state without touching anything."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, print_json


def validate(
    path: Path = typer.Argument(..., help="A YAML file or a directory of them."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Validate desired-state YAML; every problem is reported with file:line:column."""
    from desired_state.issues import InvalidDesiredState
    from desired_state.loader import load_path

    try:
        documents = load_path(path)
    except InvalidDesiredState as exc:
        if output is OutputFormat.json:
            print_json({"valid": False, "issues": [vars(issue) for issue in exc.issues]})
        else:
            for issue in exc.issues:
                errors.print(str(issue), highlight=False, markup=False)
            errors.print(f"[bold red]{len(exc.issues)} problem(s) found[/]")
        raise typer.Exit(1) from None
    if output is OutputFormat.json:
        print_json(
            {
                "valid": True,
                "documents": [
                    {"kind": d.document.kind, "name": d.document.name, "source": d.source}
                    for d in documents
                ],
            }
        )
    else:
        console.print(f"[green]valid:[/] {len(documents)} document(s) in {path}")


def schema(
    kind: str | None = typer.Option(None, help="Only this kind (Product, RunnerPool, Host)."),
) -> None:
    """Print the JSON Schema of desired-state documents, for editors."""
    from desired_state.schema import fleet_schema, kind_schema

    print_json(kind_schema(kind) if kind else fleet_schema())
