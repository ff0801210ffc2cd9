"""A CSV file's cells, read: its header, NumPy's fast pass over the rows and the cell-by-cell pass
that reads what NumPy refuses and names the row of a bad one, and the target column as labels.
`sources` decides which columns to read and what messages call the file (`Source`); this module
reads them. It stands apart because the two passes must read every file alike (a test compares
them), and because `encoding` judges a cell a float32 number by the same rule as they do.
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlc.compiler.csvfacts import is_missing
from dlc.runtime.dataerror import DataError

if TYPE_CHECKING:
    from dlc.runtime.sources import Source

# The model computes in float32, which rounds a number from 2^128 - 2^103 up (3.4e38) to infinity.
FLOAT32_LIMIT = 2.0**128 - 2.0**103


def _records(path: Path):
    """(the file line it ends on, its cells) for each record of a CSV file, the header first; a
    blank line is a record of no cells. Text that cannot be read is a DataError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not part of a name
            reader = csv.reader(f)
            for row in reader:
                yield reader.line_num, row
    except UnicodeDecodeError:
        raise DataError(f"`{path.name}` is not UTF-8 text") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"cannot read `{path.name}`: {e}") from None


def column_names(path: Path) -> list[str]:
    """The column names of a CSV file's first row, each there and once."""
    records = _records(path)
    header = [cell.strip() for cell in next(records, (1, []))[1]]
    records.close()
    if not any(header):
        raise DataError(f"`{path.name}` is empty: a CSV source needs a header row naming its columns")
    for i, column in enumerate(header):
        if not column:
            raise DataError(f"`{path.name}` row 1, column {i + 1} has no name")
        if column in header[:i]:
            raise DataError(f"`{path.name}` row 1 names the column `{column}` twice")
    return header


def line_of(path: Path, example: int) -> int:
    """The file line of example `example` (from 0) of a CSV file, for a message: blank lines and
    line breaks in quoted cells make the two differ."""
    examples = (line for line, row in itertools.islice(_records(path), 1, None) if row)
    return next(itertools.islice(examples, example, None))


class Cells:
    """Numbers each distinct cell of a column in the order first met: the converter through which
    NumPy's parser reads the target column, so that class names are read at its speed too."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, cell: str) -> int:
        return self.seen.setdefault(cell, len(self.seen))


def _unread(cell: str) -> float:
    """The converter of a column that is not used: its cells are never parsed."""
    return 0.0


def by_numpy(path: Path, width: int, wanted: list[int], target_at: int | None,
             cells: Cells | None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(features, target cells as codes of `cells`) read by NumPy's C parser; None when it refuses
    the file or reads a feature that is no finite float32: `by_cell` then says where and why."""
    converters = {i: _unread for i in range(width) if i not in wanted and i != target_at}
    if cells is not None:
        converters[target_at] = cells
    try:
        with path.open(newline="", encoding="utf-8-sig") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy warns of a file without rows: `by_cell` refuses it
            next(csv.reader(f), None)  # the header, as `column_names` read it
            table = np.loadtxt(f, dtype=np.float32, delimiter=",", quotechar='"', comments=None, ndmin=2,
                               converters=converters)
    except MemoryError:
        raise DataError(f"`{path.name}` does not fit in this machine's memory") from None
    except (ValueError, OSError, csv.Error):  # a cell that is no number, a ragged row; UnicodeDecodeError too
        return None
    # float32 holds every integer up to 2^24 exactly: more distinct cells would lose their codes.
    if table.shape[1] != width or not len(table) or (cells is not None and len(cells.seen) > 2**24):
        return None
    if cells is not None and any(is_missing(cell) for cell in cells.seen):
        return None  # a missing label: read again, to know which rows
    x = table if wanted == list(range(width)) else table[:, wanted]
    if not (np.isfinite(x.min(0)).all() and np.isfinite(x.max(0)).all()):
        return None
    return x, None if target_at is None else table[:, target_at].astype(np.int64)


def by_cell(path: Path, header: list[str], wanted: list[int], target_at: int | None, cells: Cells | None,
            as_table: bool = False) -> tuple[np.ndarray | list[list[str]], np.ndarray | None]:
    """What `by_numpy` reads, read cell by cell with the csv module: the first ragged row is a
    DataError naming its row (its line in the file). The features come as float32 when every one is
    a finite float32 number and no target cell is missing; else (or `as_table`) as each column's
    cells, for a `Table`."""
    values, texts, codes, rows = array("f"), [[] for _ in wanted], array("q"), 0
    numeric = not as_table
    for line, row in itertools.islice(_records(path), 1, None):
        if not row:
            continue  # a blank line holds no example
        if len(row) != len(header):
            raise DataError(f"`{path.name}` row {line} has {len(row)} cells, the header has {len(header)}")
        for column, i in zip(texts, wanted, strict=True):
            column.append(row[i])
            if numeric:
                value = float32_of(row[i])
                numeric = value is not None
                values.append(value or 0.0)
        if cells is not None:
            codes.append(cells(row[target_at]))
            numeric = numeric and not is_missing(row[target_at])
        rows += 1
    if not rows:
        raise DataError(f"`{path.name}` has a header but no rows")
    codes = None if cells is None else np.frombuffer(codes, np.int64)
    if not numeric:
        return texts, codes
    return np.frombuffer(values, np.float32).reshape(rows, len(wanted)), codes


def _parse(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def float32_of(cell: str) -> float | None:
    """A cell's number, if float32 holds it: finite, and not so large that float32 rounds it to infinity."""
    value = _parse(cell)
    return value if value is not None and abs(value) < FLOAT32_LIMIT else None  # NaN compares False


def not_float32(cell: str) -> str:
    """Why `float32_of` refused a cell, for a message."""
    value = _parse(cell)
    if value is None:
        return f"`{cell}` is not a number" if cell.strip() else "the cell is empty"
    if not math.isfinite(value):
        return f"`{cell}` is not a finite number"
    return f"`{cell}` is beyond float32's range (±3.4e38), which the model computes in"


def target_column(cells: Cells, codes: np.ndarray, source: Source) -> tuple[np.ndarray, np.ndarray]:
    """The target cells as numbers when every one is a number (integers when all are whole and
    exact in float64), else as text: class names; and which are missing (`missing=`, which decides
    what becomes of their rows, puts the first label in their place). A bad cell is named by its row
    and column."""
    distinct = list(cells.seen)
    absent = np.array([is_missing(cell) for cell in distinct])
    if absent.all():
        raise DataError(f"every cell of the target column `{source.target}` of {source} is missing")
    present = [cell for cell, gone in zip(distinct, absent, strict=True) if not gone]
    numbers = [_parse(cell) for cell in present]
    if all(value is not None for value in numbers):
        values = np.array(numbers)
        if not np.isfinite(values).all():
            finite = absent.copy()
            finite[~absent] = np.isfinite(values)
            first = int(np.argmin(finite[codes]))
            raise DataError(f"{source.value('y', (first,))}: `{distinct[codes[first]]}` is not a finite number")
        whole = np.array_equal(values, np.round(values)) and np.abs(values).max() < 2**53
        values = values.astype(np.int64) if whole else values
    else:
        values = np.array([cell.strip() for cell in present])
    full = np.empty(len(distinct), values.dtype)
    full[~absent] = values
    full[absent] = values[0]
    return full[codes], absent[codes]
