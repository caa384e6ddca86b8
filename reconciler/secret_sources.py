"""The operator's rules for secret sources (`desired_state.secret_sources`), built from the
settings: every setting of Setpoint's own is reserved, whatever the prefix or list say."""

from __future__ import annotations

from functools import cache

from desired_state.secret_sources import SecretSources
from reconciler.settings import Settings


@cache
def own_setting_names() -> frozenset[str]:
    """The environment variable of every setting in `Settings`. The providers' settings
    (SETPOINT_DOKPLOY_*, SETPOINT_GITHUB_*, SETPOINT_SSH_*) lie outside SETPOINT_SECRET_*,
    the only part of Setpoint's namespace `fromEnv` ever reads."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return frozenset(f"{prefix}{name}".upper() for name in Settings.model_fields)


def secret_sources(settings: Settings) -> SecretSources:
    folder = settings.secret_file_dir
    return SecretSources(
        reserved=own_setting_names(),
        env_prefix=settings.secret_env_prefix,
        env_allow=frozenset(settings.secret_env_allow),
        file_dir=folder.absolute() if folder is not None else None,
    )


def default_sources() -> SecretSources:
    """The rules with every setting at its default: the prefix only, no `fromFile`."""
    return SecretSources(reserved=own_setting_names())
