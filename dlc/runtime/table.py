"""A CSV file's feature columns as read, before they are encoded (`encoding.py`): what `sources`
returns when a cell is missing or is not a number, and for a text column. Each column keeps its
cells as text, stripped of spaces, so that the encoder decides on the training split alone which
columns are numbers and which are categories, and a category stays the text written (`007`, not 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlc.compiler.csvfacts import MISSING_MARKERS

_MARKERS = np.array(sorted(MISSING_MARKERS), dtype=object)


@dataclass(frozen=True)
class Table:
    """Rows of a CSV file's feature columns. `examples` is each row's place among the file's examples
    (rows dropped or split off keep theirs, for messages naming the file row); `label_missing` marks
    the rows whose target cell is missing (all False without a target)."""

    columns: tuple[str, ...]
    cells: tuple[np.ndarray, ...]  # per column: its cells as text (Python strings), stripped
    examples: np.ndarray  # int64, per row
    label_missing: np.ndarray  # bool, per row

    def __len__(self) -> int:
        return len(self.examples)

    def rows(self, index: np.ndarray) -> Table:
        return Table(self.columns, tuple(c[index] for c in self.cells), self.examples[index],
                     self.label_missing[index])

    def missing(self, j: int) -> np.ndarray:
        """Which cells of column `j` are missing: empty, or one of the markers LANGUAGE.md lists."""
        return np.isin(self.cells[j], _MARKERS)


def table_of(columns: tuple[str, ...], cells: list[list[str]], label_missing: list[bool]) -> Table:
    """A Table from the cells of each column, row by row as read."""
    n = len(label_missing)
    # Python strings in object arrays: NumPy's fixed-width text would drop a trailing NUL character.
    return Table(columns, tuple(np.array([cell.strip() for cell in column], dtype=object).reshape(n) for column in cells),
                 np.arange(n), np.array(label_missing, dtype=bool).reshape(n))


def drop_missing(table: Table, y: np.ndarray, text: str | None = None) -> tuple[Table, np.ndarray, int]:
    """`missing=drop`: the rows without a missing cell (a feature's or the target's; the cells of a
    text column are texts as they are, an empty one too), and how many were dropped."""
    gone = table.label_missing.copy()
    for j, column in enumerate(table.columns):
        if column != text:
            gone |= table.missing(j)
    if not gone.any():
        return table, y, 0
    kept = np.flatnonzero(~gone)
    return table.rows(kept), y[kept], int(gone.sum())
