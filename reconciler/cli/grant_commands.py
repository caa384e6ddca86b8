"""`setpoint grants add/list/remove`: which GitHub workflows may ask the API for which lanes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json
from reconciler.presentation.tables import Column, Role, fit_table

if TYPE_CHECKING:
    from reconciler.records.grants import Grant

app = typer.Typer(
    help="Grants: which GitHub workflows may ask the API to plan or apply which lanes.",
    no_args_is_help=True,
)

PATTERN_HELP = "shell-style pattern; `*` matches anything, slashes included"


@app.command("add")
def grants_add(
    repository_id: int = typer.Option(
        ...,
        "--repository-id",
        min=1,
        help="GitHub's numeric id (`gh api repos/OWNER/NAME -q .id`).",
    ),
    repository: str = typer.Option(..., "--repository", help="OWNER/NAME, for people reading."),
    lanes: str = typer.Option(
        ..., "--lanes", help=f"Lane keys, e.g. 'product:shop/*' ({PATTERN_HELP})."
    ),
    workflow_ref: str = typer.Option(
        "*",
        "--workflow-ref",
        help=f"e.g. 'acme/shop/.github/workflows/build.yml@refs/heads/main' ({PATTERN_HELP}).",
    ),
    ref: str = typer.Option(
        "*", "--ref", help=f"Git ref, e.g. 'refs/heads/main' ({PATTERN_HELP})."
    ),
    environment: str = typer.Option(
        "*", "--environment", help="Deployment environment; '*' also matches a job without one."
    ),
    allow_apply: bool = typer.Option(
        False, "--allow-apply", help="Allow asking for apply too (the lane's policy still decides)."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Grant a workflow the right to ask for reconciles (plan only, unless --allow-apply). Audited."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit, grants
    from reconciler.records.audit_events import AuditEvent
    from reconciler.runtime import utcnow

    spec = grants.GrantSpec(
        repository_id=repository_id,
        repository=repository,
        lanes=lanes,
        workflow_ref=workflow_ref,
        ref=ref,
        environment=environment,
        allow_apply=allow_apply,
    )
    actor = default_actor()
    now = utcnow()
    with audit.transaction(context.ready_engine()) as session:
        grant = grants.add_grant(session, spec, actor, now)
        audit.append(session, event=AuditEvent.grant_added, actor=actor, data=_view(grant), at=now)
    if output is OutputFormat.json:
        print_json(_view(grant))
        return
    console.print(f"added grant [bold]{grant.id}[/]", highlight=False)


def _view(grant: Grant) -> dict[str, object]:
    return {
        "id": grant.id,
        "repository_id": grant.repository_id,
        "repository": grant.repository,
        "workflow_ref": grant.workflow_ref,
        "ref": grant.ref,
        "environment": grant.environment,
        "lanes": grant.lanes,
        "actions": [str(a) for a in grant.actions],
        "created_by": grant.created_by,
        "created_at": grant.created_at.isoformat(),
    }


GRANT_COLUMNS = (
    Column("ID", Role.identifier),
    Column("REPOSITORY"),
    Column("LANES", Role.identifier),
    Column("ACTIONS"),
    Column("REF", Role.lesser),
    Column("ENVIRONMENT", Role.lesser),
    Column("WORKFLOW", Role.flexible),
)


@app.command("list")
def grants_list(
    output: OutputFormat = OUTPUT_OPTION,
    wide: bool = typer.Option(False, "--wide", help="Show every column, however wide."),
) -> None:
    """Every grant."""
    from reconciler.records import grants
    from reconciler.records.database import session_scope

    with session_scope(context.ready_engine()) as session:
        rows = grants.all_grants(session)
    if output is OutputFormat.json:
        print_json([_view(g) for g in rows])
        return
    if not rows:
        console.print("no grants: the API refuses every workflow (`setpoint grants add`)")
        return
    cells = [
        [
            g.id,
            escape(g.repository),
            escape(g.lanes),
            ",".join(g.actions),
            escape(g.ref),
            escape(g.environment),
            escape(g.workflow_ref),
        ]
        for g in rows
    ]
    fit_table(console, GRANT_COLUMNS, cells, wide=wide).print(console, wide=wide)


@app.command("remove")
def grants_remove(grant_id: str = typer.Argument(..., help="The id `grants list` shows.")) -> None:
    """Remove a grant; the workflows it covered are refused from the next request. Audited."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit, grants
    from reconciler.records.audit_events import AuditEvent
    from reconciler.runtime import utcnow

    actor = default_actor()
    with audit.transaction(context.ready_engine()) as session:
        removed = grants.remove_grant(session, grant_id)
        if removed is None:
            raise fail(f"no grant {grant_id!r} (`setpoint grants list`)")
        audit.append(
            session, event=AuditEvent.grant_removed, actor=actor, data=_view(removed), at=utcnow()
        )
    console.print(f"removed grant [bold]{escape(grant_id)}[/]", highlight=False)
