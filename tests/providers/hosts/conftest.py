"""The Dokploy emulator fixtures, for the Dokploy container host adapter."""

from tests.providers.dokploy.fixtures import dokploy_contract, dokploy_emulator, emulator

__all__ = ["dokploy_contract", "dokploy_emulator", "emulator"]
