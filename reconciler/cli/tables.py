"""Tables that read at any width: identifiers are never cut, lesser columns give way.

Piped output and narrow terminals are 80 columns. A table lists its columns with a role:
an `identifier` (lane key, plan id, audit seq) is shown whole at its natural width; the
one `flexible` column (a message, a summary) folds into whatever width is left; `lesser`
columns are dropped, in the order given, until the rest fit. `wide` keeps every column and
lets the table be as wide as it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

FLEXIBLE_MIN_WIDTH = 20  # below this a message is more wrapping than text
BORDER_PER_COLUMN = 3  # a padding space each side and a divider
BORDER_END = -1  # no outer edge


class Role(Enum):
    identifier = "identifier"  # never cut, never dropped
    plain = "plain"  # short, kept
    lesser = "lesser"  # dropped first when the table does not fit
    flexible = "flexible"  # folds into what is left; dropped last


@dataclass(frozen=True)
class Column:
    header: str
    role: Role = Role.plain


@dataclass
class FittedTable:
    table: Table
    hidden: list[str]  # headers of the columns left out
    natural_width: int  # what every kept column needs at its full width

    def print(self, console: Console, *, wide: bool) -> None:
        if not wide:
            console.print(self.table)
        else:  # rich caps a print's width at the console's: widen the console meanwhile
            before = console.width
            console.width = max(before, self.natural_width)
            try:
                console.print(self.table)
            finally:
                console.width = before
        if self.hidden:
            console.print(f"[dim]({', '.join(self.hidden)} hidden: --wide shows them)[/]")


def _natural(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(Text.from_markup(c).cell_len for c in cells)])


def _needed(columns: Sequence[Column], widths: Sequence[int]) -> int:
    total = BORDER_END
    for column, width in zip(columns, widths, strict=True):
        shown = min(width, FLEXIBLE_MIN_WIDTH) if column.role is Role.flexible else width
        total += shown + BORDER_PER_COLUMN
    return total


def _drop_order(columns: Sequence[Column]) -> list[int]:
    lesser = [i for i, c in enumerate(columns) if c.role is Role.lesser]
    flexible = [i for i, c in enumerate(columns) if c.role is Role.flexible]
    return lesser + flexible


def _kept(columns: Sequence[Column], widths: Sequence[int], available: int) -> list[int]:
    kept = list(range(len(columns)))
    for index in _drop_order(columns):
        if _needed([columns[i] for i in kept], [widths[i] for i in kept]) <= available:
            break
        kept.remove(index)
    return kept


def fit_table(
    console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, wide: bool
) -> FittedTable:
    widths = [_natural(c.header, [row[i] for row in rows]) for i, c in enumerate(columns)]
    kept = list(range(len(columns))) if wide else _kept(columns, widths, console.width)
    fits = _needed([columns[i] for i in kept], [widths[i] for i in kept]) <= console.width
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i in kept:
        column = columns[i]
        # Identifiers keep their width while the table fits; past that they fold: wrapped
        # onto the next line, never cut.
        if column.role is Role.identifier and (fits or wide):
            table.add_column(column.header, min_width=widths[i], overflow="fold")
        elif column.role is Role.flexible:
            table.add_column(column.header, overflow="fold")
        else:
            table.add_column(column.header, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    hidden = [columns[i].header for i in range(len(columns)) if i not in kept]
    natural = sum(widths[i] + 2 * BORDER_PER_COLUMN for i in kept)  # with room to spare
    return FittedTable(table, hidden, natural)
