"""Validation problems, each pointing at file:line:column and a field path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Issue:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    field: str  # dotted path, e.g. spec.lanes[0].image
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class InvalidDesiredState(Exception):
    """Raised with every problem found, not only the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
