"""A contract-faithful Dokploy v0.30 emulator (ASGI), with fault injection for tests."""

from providers.dokploy.emulator.app import Emulator, create_app
from providers.dokploy.emulator.faults import FaultController

__all__ = ["Emulator", "FaultController", "create_app"]
