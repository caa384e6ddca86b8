"""What `setpoint serve` and `setpoint run` say while they run: one line per event, in
logfmt or JSON lines (`SETPOINT_LOG_FORMAT`), on stderr.

An operator watching the logs sees where the service listens, that the loop started, a line
per pass (lanes worked, planned, applied, refused, failed, how long) and a line per
operation (who asked, for which lane, how it ended). Engine modules log with the standard
`logging` calls and put their structured values in `extra={"fields": {...}}`; this module
only formats. Every line is redacted as a whole, after formatting, so no secret value that
Setpoint knows can reach the log through a message or a field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.secret_values import redact

if TYPE_CHECKING:
    from reconciler.loop.passes import PassReport

log = logging.getLogger("setpoint.service")

# Loggers that speak for the service at INFO; everything else stays at WARNING unless -v.
SERVICE_LOGGERS = ("setpoint", "providers")
# Libraries whose INFO lines are noise for an operator (alembic names every migration step).
QUIET_LOGGERS = ("alembic", "httpx", "uvicorn.access")
_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")


class LogFormat(StrEnum):
    logfmt = "logfmt"
    json = "json"


def fields_of(record: logging.LogRecord) -> Mapping[str, Any]:
    found = getattr(record, "fields", None)
    return found if isinstance(found, Mapping) else {}


def _stamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _logfmt_value(value: object) -> str:
    text = str(value)
    if _BARE_VALUE.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """`time=… level=info logger=setpoint.loop msg="…" key=value …`"""

    def format(self, record: logging.LogRecord) -> str:
        pairs: dict[str, object] = {
            "time": _stamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            pairs["error"] = self.formatException(record.exc_info).splitlines()[-1]
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in pairs.items())
        return redact(line)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the same keys as logfmt."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": _stamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **{key: _jsonable(value) for key, value in fields_of(record).items()},
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return redact(json.dumps(document, ensure_ascii=False))


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    LogFormat.logfmt: LogfmtFormatter,
    LogFormat.json: JsonLinesFormatter,
}


class ServiceHandler(logging.StreamHandler[TextIO]):
    """The service's own handler (found again by type, so configuring twice adds nothing)."""


def configure(log_format: LogFormat, verbosity: int = 0, stream: TextIO | None = None) -> None:
    """Replace the interactive handlers with one service handler at INFO (DEBUG with -vv)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = ServiceHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity > 2 else logging.WARNING)


def loop_started(interval: float, workers: int) -> None:
    log.info(
        "loop started",
        extra={"fields": {"event": "loop_started", "interval_s": interval, "workers": workers}},
    )


class PassLogger:
    """The loop's `on_pass` hook: one line per pass, timed from the end of the one before."""

    def __init__(self) -> None:
        self.since = time.monotonic()

    def __call__(self, report: PassReport) -> None:
        from reconciler.core.outcomes import LaneOutcome  # loaded by the loop already

        now = time.monotonic()
        seconds, self.since = now - self.since, now
        log.info(
            "pass",
            extra={
                "fields": {
                    "event": "pass",
                    "lanes": len(report.lanes),
                    "planned": report.plans_stored,
                    "converged": report.count(LaneOutcome.converged),
                    "degraded": report.count(LaneOutcome.degraded),
                    "applied": report.count(LaneOutcome.applied),
                    "awaiting_operator": report.count(LaneOutcome.awaiting_operator),
                    "waiting": report.count(LaneOutcome.waiting),
                    "refused": report.count(LaneOutcome.refused),
                    "blocked": report.count(LaneOutcome.blocked),
                    "failed": report.count(LaneOutcome.apply_failed),
                    "rolled_back": report.count(LaneOutcome.rolled_back),
                    "found": len(report.found),
                    "seconds": round(seconds, 3),
                }
            },
        )
