"""bench/journal_commits.py at a tiny size, so it cannot rot between hand runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_journal_bench_commits_three_times_per_lane() -> None:
    command = [sys.executable, str(ROOT / "bench" / "journal_commits.py"), "--lanes=4", "--runs=1"]
    done = subprocess.run(  # noqa: S603 -- our own interpreter and script
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run 1: 12 commits" in done.stdout
