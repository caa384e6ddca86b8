"""Dokploy test fixtures live in `fixtures.py` so other suites can load them as a plugin."""

from tests.providers.dokploy.fixtures import (
    dokploy_client,
    dokploy_contract,
    dokploy_emulator,
    emulator,
    raw_http,
)

__all__ = ["dokploy_client", "dokploy_contract", "dokploy_emulator", "emulator", "raw_http"]
