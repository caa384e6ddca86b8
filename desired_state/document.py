"""The envelope every desired-state document has: apiVersion, kind, metadata, spec."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from desired_state.base import SpecModel
from desired_state.host import HostSpec
from desired_state.names import Name
from desired_state.preview_anchor import PreviewAnchorSpec
from desired_state.product import ProductSpec
from desired_state.runner_pool import RunnerPoolSpec

API_VERSION = "setpoint.dev/v1"
DocumentKind = Literal["Product", "RunnerPool", "Host", "PreviewAnchor"]
Spec = ProductSpec | RunnerPoolSpec | HostSpec | PreviewAnchorSpec

SPEC_MODELS: dict[str, type[SpecModel]] = {
    "Product": ProductSpec,
    "RunnerPool": RunnerPoolSpec,
    "Host": HostSpec,
    "PreviewAnchor": PreviewAnchorSpec,
}
# Kinds Setpoint writes itself (discovery, webhooks, workflow requests), never an operator's
# files: `desired apply`, with or without --prune, neither removes them nor offers to.
FOUND_KINDS = frozenset({"PreviewAnchor"})


class Metadata(SpecModel):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Document(SpecModel):
    api_version: Literal["setpoint.dev/v1"]
    kind: DocumentKind
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.metadata.name}"

    def spec_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", by_alias=True)

    def spec_hash(self) -> str:
        return spec_hash(self.spec_dict())


def spec_hash(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
