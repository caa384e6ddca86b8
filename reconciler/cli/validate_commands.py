"""`setpoint validate` and `setpoint schema`: check desired state without touching anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, print_json


def validate(
    path: Path = typer.Argument(..., help="A YAML file or a directory of them."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Validate desired-state YAML; every problem is reported with file:line:column."""
    from desired_state.issues import InvalidDesiredState
    from desired_state.loader import scan_path
    from reconciler.cli.context import settings
    from reconciler.secret_sources import secret_sources

    try:
        scan = scan_path(path, sources=secret_sources(settings()))
    except InvalidDesiredState as exc:
        if output is OutputFormat.json:
            print_json({"valid": False, "issues": [vars(issue) for issue in exc.issues]})
        else:
            for issue in exc.issues:
                errors.print(str(issue), highlight=False, markup=False)
            errors.print(f"[bold red]{len(exc.issues)} problem(s) found[/]")
        raise typer.Exit(1) from None
    documents = scan.documents
    if output is OutputFormat.json:
        print_json(
            {
                "valid": True,
                "documents": [
                    {"kind": d.document.kind, "name": d.document.name, "source": d.source}
                    for d in documents
                ],
                "skipped": [{"file": s.file, "reason": s.reason} for s in scan.skipped],
                "warnings": [vars(warning) for warning in scan.warnings],
            }
        )
    else:
        for warning in scan.warnings:
            errors.print(f"warning: {warning}", highlight=False, markup=False)
        console.print(f"[green]valid:[/] {len(documents)} document(s) in {path}")
        print_skipped(scan.skipped, console)


_LISTED = 10  # a scan of a repository may skip hundreds of files under .venv/ and such


def print_skipped(skipped: Sequence[Any], out: Console) -> None:
    """How many YAML files a directory scan skipped and why, then each of them."""
    if not skipped:
        return
    reasons = Counter(s.reason for s in skipped)
    why = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    out.print(f"skipped {len(skipped)} YAML file(s): {why}", highlight=False)
    for s in skipped[:_LISTED]:
        out.print(f"  skipped {s.file}: {s.reason}", highlight=False, markup=False, style="dim")
    if len(skipped) > _LISTED:
        out.print(f"  and {len(skipped) - _LISTED} more", highlight=False, style="dim")


def schema(
    kind: str | None = typer.Option(None, help="Only this kind (Product, RunnerPool, Host)."),
) -> None:
    """Print the JSON Schema of desired-state documents, for editors."""
    from desired_state.schema import fleet_schema, kind_schema

    print_json(kind_schema(kind) if kind else fleet_schema())
