"""Item 3 through the CLI: `forget` refuses in one line while the lane's objects exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Invoke

pytestmark = pytest.mark.e2e


def test_forget_refuses_in_one_line_while_objects_exist(setpoint: Invoke, planned: Path) -> None:
    assert setpoint("apply", str(planned)).exit_code == 0
    refused = setpoint("forget", "notes/testing")
    assert refused.exit_code == 1
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "refusing to forget product:notes/testing" in refused.stderr
    assert "still exists in Dokploy" in refused.stderr
    status = setpoint("status")
    assert "product:notes/testing" in status.stdout  # nothing was dropped
