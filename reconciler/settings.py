"""Process-wide settings from the environment (`SETPOINT_` prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///.setpoint/setpoint.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; SQLite file by default, postgresql://... for shared use",
    )
    actor: str | None = Field(default=None, description="who is acting, for audit records")
