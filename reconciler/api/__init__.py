"""The HTTP API (FastAPI): a thin adapter over the engine and the records, like `cli/`."""

from reconciler.api.service import create_api

__all__ = ["create_api"]
