"""The one model configuration every desired-state object shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Strict: unknown fields are errors and values are not coerced ("8080" is not a port).

    YAML keys are camelCase, as in Kubernetes-style manifests; Python attributes are snake_case.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )
