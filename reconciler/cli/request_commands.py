"""`setpoint reconcile LANE [--wait] [--apply]`: a client of the API, as a workflow is.

The request is answered 202 at once with an operation; `--wait` polls it (backing off, up
to 15 s between looks) until it finishes. Exit codes: 0 the request was accepted (without
`--wait`) or the operation succeeded; 1 the API refused the request, could not be reached,
or the operation failed; 2 the operation is blocked (its plan has blockers or waits for an
operator); 3 `--wait` gave up after `--timeout` seconds with the operation still running.
An operation parked on a long wait (a deploy's build) is shown with what it waits for and
when its lane is looked at again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from reconciler.cli.output import OUTPUT_OPTION, OutputFormat, console, fail, print_json

if TYPE_CHECKING:
    import httpx

EXIT_OK, EXIT_FAILED, EXIT_BLOCKED, EXIT_TIMED_OUT = 0, 1, 2, 3
FIRST_POLL_SECONDS, MAX_POLL_SECONDS = 1.0, 15.0
DEFAULT_KIND = "product"


def reconcile_request(
    lane: str = typer.Argument(
        ..., help="kind:name, e.g. product:shop/testing (a bare name means a product lane)."
    ),
    apply: bool = typer.Option(
        False,
        "--apply",
        help="Ask for apply (your grant must allow it; the lane's policy decides).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Poll the operation until it finishes."),
    timeout: float = typer.Option(
        1800.0, "--timeout", min=1.0, help="With --wait: give up after this many seconds (exit 3)."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="KEY=VALUE for the lane's kind (repeatable), e.g. sha=<head sha>."
    ),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", help="Send again with the same key: the same operation."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Ask the API (SETPOINT_API_URL, with SETPOINT_API_TOKEN) to reconcile one lane.

    Exit 0 accepted (or, with --wait, succeeded); 1 refused, unreachable or failed;
    2 blocked; 3 still running when --timeout ran out.
    """
    import httpx

    from reconciler.cli import context

    settings = context.settings()
    if settings.api_token is None:
        raise fail("SETPOINT_API_TOKEN is not set: an operator token (`setpoint tokens create`)")
    params = _params(param)
    kind, _, name = lane.rpartition(":")
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    path = f"/v1/lanes/{kind or DEFAULT_KIND}/{name}/reconcile"
    with httpx.Client(
        base_url=settings.api_url, headers=headers, timeout=settings.api_timeout_seconds
    ) as http:
        operation = _call(http, "POST", path, json={"apply": apply, "params": params})
        if wait:
            operation = _poll(http, operation, time.monotonic() + timeout)
    _show(operation, output)
    raise typer.Exit(_exit_code(operation, waited=wait))


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--param {pair!r}: write it as KEY=VALUE")
        params[key] = value
    return params


def _call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    import httpx

    try:
        answer = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the API at {http.base_url}: {type(exc).__name__}") from None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        body = {}
    if answer.status_code >= 400:
        detail = body.get("detail") or answer.reason_phrase
        raise fail(f"the API refused ({answer.status_code} {body.get('title', '')}): {detail}")
    return body


def _poll(http: httpx.Client, operation: dict[str, Any], deadline: float) -> dict[str, Any]:
    pause = FIRST_POLL_SECONDS
    while not _final(operation) and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        operation = _call(http, "GET", f"/v1/operations/{operation['id']}")
        pause = min(pause * 1.5, MAX_POLL_SECONDS)
    return operation


def _final(operation: dict[str, Any]) -> bool:
    return operation.get("status") in {"succeeded", "failed", "blocked"}


def _exit_code(operation: dict[str, Any], *, waited: bool) -> int:
    status = operation.get("status")
    if not waited:
        return EXIT_OK
    return {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "blocked": EXIT_BLOCKED}.get(
        str(status), EXIT_TIMED_OUT
    )


def _show(operation: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(operation)
        return
    line = f"operation [bold]{operation.get('id')}[/] {escape(str(operation.get('lane')))}: "
    line += escape(str(operation.get("status")))
    if operation.get("plan_id"):
        line += f" (plan {escape(str(operation['plan_id']))})"
    console.print(line, highlight=False)
    if operation.get("error"):
        console.print(f"  {escape(str(operation['error']))}", highlight=False)
    waiting = operation.get("waiting") or {}
    for wait in waiting.get("for", []):
        line = f"  waiting: {wait.get('op')} {wait.get('action')}: {wait.get('message')}"
        line += f" (looked at again at {waiting.get('due_at')})"
        console.print(escape(line), highlight=False)
