"""What the checker learns from a CSV file's cells: which feature columns are categorical and how
many categories each has in the training split, the one-hot widths that `input` and the parameter
counts depend on. `datafacts.py` reads the header; this reads the rows, with the csv module.

A column is categorical when one of its training values (not missing) is not a number. Which rows
are the training split is decided as the runtime decides it: rows with a missing cell dropped first
under `missing=drop`, then the seeded, stratified split of `splitting.py` over the labels ranked as
the runtime encodes them. Only a file with such text cells held out in part needs that split (and
NumPy, imported then); every other file costs one pass of the csv module, at most MAX_SCAN_BYTES.

Whatever would stop the runtime (a ragged row, a missing cell under `missing=error`, a label that is
no class) leaves the widths unknown here: the runtime then says exactly where, reading the data.
"""

from __future__ import annotations

import csv
import functools
import itertools
import os
from pathlib import Path

from dlc.compiler.splitting import held_out_sizes, split_indices

# What a missing cell is (after stripping spaces), as LANGUAGE.md lists it.
MISSING_MARKERS = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "?"})
# A file larger than this is read up to here: if every cell read is a number (or missing), its
# columns are numeric; if not, the widths are left unknown until the runtime reads it all.
MAX_SCAN_BYTES = 64 * 2**20


def is_missing(cell: str) -> bool:
    return cell.strip() in MISSING_MARKERS


def is_number(cell: str) -> bool:
    """A cell Python reads as a number (the runtime reads it as Python does, should NumPy not)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def categorical_columns(path: Path, header: tuple[str, ...], target: str, *, missing: str, val: float,
                        test: float, shuffle: bool, seed: int, stratify: bool) -> tuple[tuple[str, int], ...] | None:
    """(column, categories in the training split) for each categorical feature column, in column order;
    () when every feature column is numeric; None when it cannot be known without the runtime."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return _categorical(str(path), status.st_size, status.st_mtime_ns, header, target, missing, val, test,
                        shuffle, seed, stratify)


@functools.lru_cache(maxsize=16)  # a spec is checked more than once (a growing text, a fit's recheck)
def _categorical(path: str, size: int, mtime: int, header: tuple[str, ...], target: str, missing: str,
                 val: float, test: float, shuffle: bool, seed: int, stratify: bool
                 ) -> tuple[tuple[str, int], ...] | None:
    features = [i for i, column in enumerate(header) if column != target]
    texts = _text_columns(Path(path), len(header), features)
    if texts is None:
        return None
    if not texts:
        return ()
    if size > MAX_SCAN_BYTES:
        return None
    at = header.index(target)
    rows = _rows(Path(path), len(header), texts, at, drop=missing == "drop")
    if rows is None:
        return None
    columns, labels = rows
    if any(is_missing(label) for label in labels):
        return None  # a label cannot be filled in: the runtime says where
    n = len(labels)
    sizes = held_out_sizes(n, val, test)
    if not n or sum(sizes.values()) >= n:
        return None
    if any(sizes.values()):
        strata = _strata(labels) if stratify and shuffle else None
        if stratify and shuffle and strata is None:
            return None
        train = split_indices(n, val, test, shuffle=shuffle, seed=seed, strata=strata)["train"].tolist()
    else:
        train = range(n)
    out = []
    for j, cells in zip(texts, columns, strict=True):
        values = [cells[i] for i in train if not is_missing(cells[i])]
        if all(is_number(cell) for cell in values):
            continue  # text only outside the training split: a numeric column, whose text the runtime refuses
        out.append((header[j], len({cell.strip() for cell in values})))
    return tuple(out)


def _records(path: Path):
    """The non-blank records after the header, as the runtime reads them."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        for row in itertools.islice(csv.reader(f), 1, None):
            if row:
                yield row


def _text_columns(path: Path, width: int, features: list[int]) -> list[int] | None:
    """The feature columns with a cell that is neither a number nor missing, read up to
    MAX_SCAN_BYTES; None for a file the runtime would refuse (a ragged row, bytes that are no text)."""
    found: set[int] = set()
    left = list(features)
    read = 0
    try:
        for row in _records(path):
            if len(row) != width:
                return None
            text = [j for j in left if not is_number(row[j]) and not is_missing(row[j])]
            if text:
                found.update(text)
                left = [j for j in left if j not in found]
            read += sum(map(len, row)) + width
            if read > MAX_SCAN_BYTES or not left:
                break
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return sorted(found)


def _rows(path: Path, width: int, texts: list[int], target: int, drop: bool
          ) -> tuple[list[list[str]], list[str]] | None:
    """The cells of the `texts` columns and of the target, row by row; under `drop`, without the rows
    that have a missing cell in a feature column or the target (as the runtime drops them)."""
    columns: list[list[str]] = [[] for _ in texts]
    labels: list[str] = []
    try:
        for row in _records(path):
            if len(row) != width:
                return None
            if drop and any(is_missing(cell) for cell in row):
                continue
            for cells, j in zip(columns, texts, strict=True):
                cells.append(row[j])
            labels.append(row[target])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return columns, labels


def _strata(labels: list[str]) -> list[int] | None:
    """Each label's rank among the distinct labels, as the runtime orders classes: numbers when every
    label is one (whole ones as integers), else the stripped text; None where the runtime refuses them."""
    distinct = sorted(set(labels))
    if all(is_number(label) for label in distinct):
        values = {label: float(label) for label in distinct}
        if any(v != v or v in (float("inf"), float("-inf")) or v != round(v) for v in values.values()):
            return None  # a class label is a whole number
    else:
        if any(not label.strip() for label in distinct):
            return None
        values = {label: label.strip() for label in distinct}
    order = {value: rank for rank, value in enumerate(sorted(set(values.values())))}
    return [order[values[label]] for label in labels]
