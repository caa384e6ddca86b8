"""Logging for CLI commands: to stderr, quiet by default, every handler redacting secrets."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from reconciler.cli.output import errors
from reconciler.secret_values import install_log_redaction


def configure(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=errors, show_path=False, rich_tracebacks=False))
    root.setLevel(level)
    # httpx logs every request at INFO, with URLs; only show it when asked for debug.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
    install_log_redaction()
