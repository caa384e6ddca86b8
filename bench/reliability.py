"""Reliability tables: the fault matrix and the crash points at full size, as markdown.

Every Dokploy procedure the reconciler calls under five faults, and a real `setpoint apply`
killed with SIGKILL at every action boundary of a 48-action plan; see docs/reliability.md
for what each proves. On SQLite, and on PostgreSQL too when SETPOINT_TEST_DATABASE_URL is
set (a server the runs may create and drop databases on):

    SETPOINT_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        uv run python bench/reliability.py > reliability-tables.md

`--reduced` runs the CI size instead, `--only matrix|crash` one suite, `--json FILE` keeps
every result. Exits 1 if anything failed other than a known engine bug.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))  # the suites live in tests/, which is not installed
    from tests.reliability.report import main as report

    return report(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
