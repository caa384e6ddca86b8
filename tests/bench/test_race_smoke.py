"""bench/race.py at a tiny size, so the race cannot rot between hand runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_the_race_times_both_sides_of_the_first_apply_and_the_no_op_pass(tmp_path: Path) -> None:
    out = tmp_path / "race.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "race.py"),
        "--lanes=4",
        "--latency=0",
        "--build-seconds=0",
        "--deploy-poll-seconds=0.01",
        f"--json={out}",
    ]
    done = subprocess.run(  # noqa: S603 -- our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    heats = {row["figure"]: row for row in json.loads(out.read_text())}
    assert set(heats) == {"first apply", "no-op pass"}
    assert heats["no-op pass"]["calls"] == 2 + 4
    for heat in heats.values():
        assert heat["naive_failed"] == 0, "the naive client made the very same calls"
        assert heat["setpoint_cpu_s"] > 0 and heat["naive_wall_s"] > 0
