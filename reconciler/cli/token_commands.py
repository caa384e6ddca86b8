"""`setpoint tokens create/list/revoke`: operator tokens for the API and the plan review page."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from reconciler.cli import context
from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, errors, fail, print_json
from reconciler.presentation.tables import Column, Role, fit_table

app = typer.Typer(
    help="Operator tokens: bearer tokens that may apply plans through the API.",
    no_args_is_help=True,
)


@app.command("create")
def tokens_create(
    operator: str = typer.Argument(..., help="Who the token is for; audit records name them."),
) -> None:
    """Make a token. It is printed once, on stdout, and never stored: keep it now. Audited."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit, operator_tokens
    from reconciler.records.audit_events import AuditEvent
    from reconciler.runtime import utcnow

    if not operator.strip() or len(operator) > 100:
        raise fail("the operator's name must be 1 to 100 characters")
    actor = default_actor()
    now = utcnow()
    with audit.transaction(context.ready_engine()) as session:
        issued = operator_tokens.issue(session, operator, now)
        audit.append(
            session,
            event=AuditEvent.operator_token_created,
            actor=actor,
            data={"token_id": issued.token_id, "operator": operator},
            at=now,
        )
    errors.print(
        f"token {issued.token_id} for {escape(operator)}; shown once, keep it now:", highlight=False
    )
    sys.stdout.write(issued.token + "\n")


TOKEN_COLUMNS = (
    Column("ID", Role.identifier),
    Column("OPERATOR", Role.identifier),
    Column("CREATED"),
    Column("REVOKED"),
)


@app.command("list")
def tokens_list(output: OutputFormat = OUTPUT_OPTION) -> None:
    """Every token: id, operator, created, revoked (never the token itself)."""
    from reconciler.records import operator_tokens
    from reconciler.records.database import session_scope

    with session_scope(context.ready_engine()) as session:
        rows = operator_tokens.listed(session)
    views = [
        {
            "id": r.id,
            "operator": r.operator,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]
    if output is OutputFormat.json:
        print_json(views)
        return
    if not views:
        console.print("no operator tokens (`setpoint tokens create NAME`)")
        return
    cells = [
        [v["id"] or "", escape(v["operator"] or ""), v["created_at"] or "", v["revoked_at"] or "-"]
        for v in views
    ]
    fit_table(console, TOKEN_COLUMNS, cells, wide=False, wide_option=None).print(
        console, wide=False
    )


@app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The id `tokens list` shows.")) -> None:
    """Stop a token at once (the row stays, so the audit trail still names it). Audited."""
    from reconciler.cli.wiring import default_actor
    from reconciler.records import audit, operator_tokens
    from reconciler.records.audit_events import AuditEvent
    from reconciler.runtime import utcnow

    actor = default_actor()
    now = utcnow()
    with audit.transaction(context.ready_engine()) as session:
        if not operator_tokens.revoke(session, token_id, now):
            raise fail(f"no live token {token_id!r} (`setpoint tokens list`)")
        audit.append(
            session,
            event=AuditEvent.operator_token_revoked,
            actor=actor,
            data={"token_id": token_id},
            at=now,
        )
    console.print(f"revoked {escape(token_id)}", highlight=False)
