"""bench/fleet.py at a tiny size, so the fleet benchmark cannot rot between hand runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_fleet_bench_runs_every_phase_at_four_lanes(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "fleet.py"),
        "--lanes=4",
        "--latency=0",
        "--build-seconds=0",
        "--deploy-poll-seconds=0.01",
        "--repeat=1",
        f"--json={out}",
    ]
    done = subprocess.run(  # noqa: S603 -- our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 4 | `reconcile_pass` |" in done.stdout
    results = json.loads(out.read_text())
    (apply,) = results["apply"]
    assert apply["actions"] > 0 and apply["deploys"] == 4 and apply["naive_failed"] == 0
    passes = {row["entry"]: row for row in results["passes"]}
    assert passes["compute_plan (all lanes)"]["calls"] == 2 + 4
    assert all(row["naive_failed"] == 0 for row in passes.values())
    first, converged = results["plans"]
    assert first["state"] == "first plan (Dokploy empty)" and first["actions"] == apply["actions"]
    assert converged["state"] == "converged (no-op)" and converged["actions"] == 0
    assert converged["observe_calls"] == 2 + 4
    assert [t["target"] for t in results["targets"]]
