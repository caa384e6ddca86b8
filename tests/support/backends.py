"""Suites that run once per storage backend: a reduced size by default (CI), the full size
with SETPOINT_RELIABILITY_FULL=1 (`bench/reliability.py` runs it)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

FULL_ENV = "SETPOINT_RELIABILITY_FULL"
BACKENDS = ("sqlite", "postgresql")
Case = TypeVar("Case")


def full_size() -> bool:
    return os.environ.get(FULL_ENV) == "1"


def backend_marks(backend: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.postgres] if backend == "postgresql" else []


def by_backend(cases: Callable[[int], Iterable[Case]], label: Callable[[Case], str]) -> list[Any]:
    """`(backend, case)` parameters for every backend, named `backend-label`. `cases(offset)`
    gives a backend's cases: the offset lets a reduced run pick different ones on each."""
    return [
        pytest.param(backend, case, id=f"{backend}-{label(case)}", marks=backend_marks(backend))
        for offset, backend in enumerate(BACKENDS)
        for case in cases(offset)
    ]
