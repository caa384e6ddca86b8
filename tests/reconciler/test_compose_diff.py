"""Item 2: a compose file change reads as a unified diff, with credential lines masked."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from sqlalchemy.engine import Engine

from reconciler.core.planning import compute_plan
from reconciler.kinds.product.compose_diff import MASK, mask_line
from reconciler.kinds.product.ops import Op
from reconciler.presentation.console import render_plan
from reconciler.runtime import Runtime
from tests.reconciler.conftest import store_fleet
from tests.support.fleets import converge, example_fleet

LANE = "product:ledger/testing"
PASTED = "hunter2-pasted-in-clear"


async def test_compose_change_is_shown_as_a_masked_unified_diff(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    await converge(runtime, [LANE])
    fleet = example_fleet(
        tmp_path,
        edit=(
            "ledger.yaml",
            "              TZ: ${TZ}\n          worker:\n            image: ghcr.io/acme/ledger-worker:main",
            f"              TZ: ${{TZ}}\n              REDIS_PASSWORD: {PASTED}\n"
            "          worker:\n            image: ghcr.io/acme/ledger-worker:next",
        ),
    )
    # Validation refuses a credential in clear unless the operator says it is none; the
    # diff masks it even then.
    ledger = fleet / "ledger.yaml"
    ledger.write_text(
        ledger.read_text().replace(
            "  name: ledger\n",
            "  name: ledger\n  annotations:\n    setpoint.dev/not-secret: REDIS_PASSWORD\n",
        )
    )
    store_fleet(engine, fleet)
    plan = await compute_plan(runtime, [LANE])
    compose = next(a for a in plan.actions if a.op == Op.set_compose_file)
    console = Console(record=True, width=120, file=io.StringIO())
    render_plan(console, plan)
    shown = console.export_text()
    assert "composeFile: sha256:" in shown  # still named by digest
    assert "--- running" in shown and "+++ desired" in shown
    assert "-    image: ghcr.io/acme/ledger-worker:main" in shown
    assert "+    image: ghcr.io/acme/ledger-worker:next" in shown
    assert f"+      REDIS_PASSWORD: {MASK}" in shown
    assert "        DB_PASSWORD: ${LEDGER_DB_PASSWORD}" in shown  # a reference: kept
    assert PASTED not in shown
    changes = json.dumps([c.model_dump(mode="json") for c in compose.changes])
    assert PASTED not in changes and "ledger-worker:next" in changes


def test_credential_shapes_are_masked_and_references_kept() -> None:
    assert mask_line("  password: s3cret") == f"  password: {MASK}"
    assert mask_line('  - "API_KEY=abc123"') == f'  - "API_KEY={MASK}'
    assert mask_line("  token: ${GH_TOKEN}") == "  token: ${GH_TOKEN}"
    assert "s3cret" not in mask_line("  url: postgres://app:s3cret@db:5432/app")
    assert "ghp_" not in mask_line("  x: ghp_" + "a" * 36)
    assert mask_line("  image: nginx:1.27") == "  image: nginx:1.27"
