"""JSON Schema of every kind, for editors (yaml-language-server and friends)."""

from __future__ import annotations

from typing import Any

from desired_state.document import API_VERSION, SPEC_MODELS, Metadata


def kind_schema(kind: str) -> dict[str, Any]:
    spec = SPEC_MODELS[kind].model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = spec.pop("$defs", {})
    metadata = Metadata.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": kind,
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": metadata,
            "spec": spec,
        },
        "$defs": defs,
    }


def fleet_schema() -> dict[str, Any]:
    """One schema accepting any document, dispatched on `kind`."""
    kinds = {kind: kind_schema(kind) for kind in SPEC_MODELS}
    defs: dict[str, Any] = {}
    for schema in kinds.values():
        defs.update(schema.pop("$defs"))
        schema.pop("$schema")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Setpoint desired-state document",
        "oneOf": list(kinds.values()),
        "$defs": defs,
    }
