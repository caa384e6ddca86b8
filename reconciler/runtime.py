"""Everything one engine run needs, built once by the caller (CLI, loop, demo, tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from providers.dokploy.client import DokployClient
from reconciler.core.assembly import BlastRadiusGuard
from reconciler.health import HealthResult
from reconciler.secrets import StoreReader
from reconciler.settings import Settings

HealthCheck = Callable[[str, int, float], Awaitable[HealthResult]]
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class Runtime:
    engine: Engine
    settings: Settings
    dokploy: DokployClient
    actor: str
    health_check: HealthCheck
    environ: Mapping[str, str] | None = None  # where fromEnv secrets are read; None: os.environ
    secret_store: StoreReader | None = None  # where fromStore secrets are read
    progress: Progress = field(default=_quiet)

    @property
    def guard(self) -> BlastRadiusGuard:
        return BlastRadiusGuard(
            max_deletions=self.settings.max_deletions,
            max_share=self.settings.max_deletion_share,
        )
