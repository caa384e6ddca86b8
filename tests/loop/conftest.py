"""The loop engine's fixtures: the engine tests' runtime and emulator."""

from __future__ import annotations

from tests.reconciler.conftest import (  # noqa: F401 -- fixtures, registered by import
    dokploy_app,
    emulator,
    engine_contract,
    runtime,
    workload,
)
