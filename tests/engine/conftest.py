"""The engine modules' CLI commands are tested with the same in-process `setpoint` fixture."""

from __future__ import annotations

from tests.cli.conftest import setpoint

__all__ = ["setpoint"]
