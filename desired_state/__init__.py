"""What operators declare: typed desired-state models, YAML loading and JSON Schema.

This package imports neither `providers` nor `reconciler`.
"""

from desired_state.document import API_VERSION, Document, DocumentKind
from desired_state.host import HostSpec
from desired_state.product import LaneSpec, PreviewPolicy, ProductSpec
from desired_state.runner_pool import RunnerPoolSpec

__all__ = [
    "API_VERSION",
    "Document",
    "DocumentKind",
    "HostSpec",
    "LaneSpec",
    "PreviewPolicy",
    "ProductSpec",
    "RunnerPoolSpec",
]
