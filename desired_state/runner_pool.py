"""`RunnerPool`: self-hosted GitHub Actions runners kept between a minimum and a maximum."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from desired_state.base import SpecModel
from desired_state.names import ImageRef, Name, Repository
from desired_state.rules import raise_rules, runner_pool_rules

RunnerAction = Literal["create", "drain", "restart", "remove"]


class RunnerCount(SpecModel):
    min: int = Field(ge=0)
    max: int = Field(ge=0)


class RunnerPoolSpec(SpecModel):
    scope: Literal["repository", "organization"]
    repository: Repository | None = Field(default=None, description="for repository scope")
    organization: str | None = Field(default=None, description="for organization scope")
    allowed_repositories: list[Repository] = Field(default_factory=list)
    host: Name
    count: RunnerCount
    labels: list[str] = Field(default_factory=list)
    image: ImageRef
    ephemeral: bool = True
    allow: list[RunnerAction] = Field(
        default_factory=list, description="explicit opt-in per action; all off by default"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunnerPoolSpec:
        raise_rules(runner_pool_rules(self.model_dump(by_alias=True)))
        return self
