"""The loop engine's fixtures: the engine tests' runtime and emulator, and the API's (the
end-to-end workflow request goes through both)."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 -- fixtures, registered by import
    api,
    api_runtime,
    client,
    github_emulator,
    github_runtime,
    github_state,
    mint,
    webhook_client,
)
from tests.reconciler.conftest import (  # noqa: F401 -- fixtures, registered by import
    dokploy_app,
    emulator,
    engine_contract,
    runtime,
    workload,
)
