"""Tables that read at any width: identifiers are never cut or split, lesser columns give way.

Piped output and narrow terminals are 80 columns. A table lists its columns with a role:
an `identifier` (lane key, plan id, audit seq) is shown whole, on one line, at its natural
width, at any width; the one `flexible` column (a message, a summary) folds into whatever
width is left; `lesser` columns are dropped, in the order given, until the rest fit. When
even the identifiers do not fit (a 60-column terminal, a long lane key), the table is as
wide as they need: a line too long for the terminal is better than a key broken in two.
`wide` keeps every column and lets the table be as wide as it needs.
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
LONGEST_UNBROKEN_WORD = 60  # a longer word (a URL, say) may fold rather than widen the table
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
    # A flexible column of keys (a plan's lanes): it folds between them, never inside one.
    whole_words: bool = False


@dataclass
class FittedTable:
    table: Table
    hidden: list[str]  # headers of the columns left out
    natural_width: int  # what every kept column needs at its full width
    least_width: int = 0  # what the kept columns need with the flexible one folded
    # The command's option that shows every column (None: it has none, so none is named).
    wide_option: str | None = "--wide"

    def print(self, console: Console, *, wide: bool) -> None:
        needed = self.natural_width if wide else self.least_width
        if needed <= console.width:
            console.print(self.table)
        else:  # rich caps a print's width at the console's: widen the console meanwhile
            before = console.width
            console.width = needed
            try:
                console.print(self.table)
            finally:
                console.width = before
        if self.hidden:
            shown_by = f": {self.wide_option} shows them" if self.wide_option else ""
            console.print(f"[dim]({', '.join(self.hidden)} hidden{shown_by})[/]")


def _natural(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(Text.from_markup(c).cell_len for c in cells)])


def _longest_word(cells: Sequence[str]) -> int:
    """The widest word (lane keys in a list, a plan id in a message): a flexible column
    folds between words, never inside one that fits in LONGEST_UNBROKEN_WORD."""
    words = (w for c in cells for w in Text.from_markup(c).plain.split())
    return min(max((len(w) for w in words), default=0), LONGEST_UNBROKEN_WORD)


def _least(column: Column, natural: int, cells: Sequence[str]) -> int:
    """The narrowest the column may be: its whole width, or for the flexible one the width
    that keeps its words whole."""
    if column.role is not Role.flexible:
        return natural
    if not column.whole_words:
        return min(natural, FLEXIBLE_MIN_WIDTH)
    return min(natural, max(FLEXIBLE_MIN_WIDTH, _longest_word(cells)))


def _needed(widths: Sequence[int]) -> int:
    return BORDER_END + sum(width + BORDER_PER_COLUMN for width in widths)


def _drop_order(columns: Sequence[Column]) -> list[int]:
    lesser = [i for i, c in enumerate(columns) if c.role is Role.lesser]
    flexible = [i for i, c in enumerate(columns) if c.role is Role.flexible]
    return lesser + flexible


def _kept(columns: Sequence[Column], least: Sequence[int], available: int) -> list[int]:
    kept = list(range(len(columns)))
    for index in _drop_order(columns):
        if _needed([least[i] for i in kept]) <= available:
            break
        kept.remove(index)
    return kept


def fit_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool,
    wide_option: str | None = "--wide",
) -> FittedTable:
    by_column = [[row[i] for row in rows] for i in range(len(columns))]
    widths = [_natural(c.header, by_column[i]) for i, c in enumerate(columns)]
    least = [_least(c, widths[i], by_column[i]) for i, c in enumerate(columns)]
    kept = list(range(len(columns))) if wide else _kept(columns, least, console.width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i in kept:
        if columns[i].role is Role.flexible:
            table.add_column(columns[i].header, overflow="fold", min_width=least[i])
        else:  # identifiers and short values: whole, on one line, at their width
            table.add_column(columns[i].header, no_wrap=True, min_width=widths[i])
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    hidden = [columns[i].header for i in range(len(columns)) if i not in kept]
    natural = sum(widths[i] + 2 * BORDER_PER_COLUMN for i in kept)  # with room to spare
    return FittedTable(table, hidden, natural, _needed([least[i] for i in kept]), wide_option)
