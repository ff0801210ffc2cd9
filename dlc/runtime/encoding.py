"""A CSV's columns as the model's input features, fitted on the training split and saved with the
run (preprocessing.json, `encoding`), so that evaluation and prediction encode new files the same way.

Each feature column is one of:
- `number` (every training value that is not missing is a number): one feature; a missing cell
  becomes the column's training mean under `missing=mean`;
- `category` (some training value is not a number): one-hot, a feature per category of the training
  split in sorted order; a missing cell becomes the most frequent training category (ties: the first
  in that order) under `missing=mean`; a category the training split lacks encodes as all zeros,
  with a DataWarning naming the column and counting the rows;
- `text` (`text=`): `length` integer token ids from the training vocabulary (`text.py`).

Under `missing=error` a missing cell is a DataError naming its file, row and column; `missing=drop`
drops its row before splitting (`table.drop_missing`), and at prediction, which answers every row,
is an error too. A run saved before encodings were recorded has none: every column a number.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from dlc.runtime import text as text_mod
from dlc.runtime.csvread import FLOAT32_LIMIT, float32_of, not_float32
from dlc.runtime.sources import DataError, Source, machine_memory
from dlc.runtime.table import Table

FILL_HINT = "set `missing=mean` (fill it in) or `missing=drop` (drop its row) on `data`"


@dataclass(frozen=True)
class Encoding:
    """One JSON record per feature column, in the order of the model's features: `{"column", "kind":
    "number", "mean"}`, `{"column", "kind": "category", "categories", "mode"}` or `{"column", "kind":
    "text", "tokens", "length", "vocab"}` (the vocabulary's tokens, ids from 2)."""

    columns: tuple[dict, ...]

    @property
    def width(self) -> int:
        """Features the model takes per example."""
        return sum(_width(record) for record in self.columns)

    @property
    def categorical(self) -> tuple[tuple[str, int], ...]:
        """Each categorical column and its one-hot width, as `ir.Data.categorical` holds them."""
        return tuple((r["column"], len(r["categories"])) for r in self.columns if r["kind"] == "category")

    @property
    def tokens(self) -> bool:
        return any(r["kind"] == "text" for r in self.columns)

    @property
    def token_ids(self) -> int:
        """The number of token ids a text column's vocabulary gives (its tokens and the two reserved
        ids); 0 without a text column."""
        return next((len(r["vocab"]) + text_mod.RESERVED for r in self.columns if r["kind"] == "text"), 0)

    @property
    def reads_text(self) -> bool:
        """Whether a column's cells are read as text (a number written `007` is the category `007`)."""
        return any(r["kind"] != "number" for r in self.columns)

    def numeric(self) -> np.ndarray:
        """Per feature: True for a number column's, False for a one-hot feature (never normalized)."""
        return np.array([r["kind"] == "number" for r in self.columns for _ in range(_width(r))], dtype=bool)

    def feature_names(self) -> tuple[str, ...]:
        """Each feature's name in messages: the column, or `column=category` for a one-hot feature."""
        return tuple(name for r in self.columns for name in
                     ([f"{r['column']}={c}" for c in r["categories"]] if r["kind"] == "category" else [r["column"]]))

    def to_json(self) -> list[dict]:
        return [dict(record) for record in self.columns]


def _width(record: dict) -> int:
    return {"number": 1, "category": len(record.get("categories", ())), "text": record.get("length", 0)}[record["kind"]]


def fit(table: Table, source: Source, text: tuple[str, str, int, int] | None = None) -> Encoding:
    """The encoding of `table`'s columns, learned from its rows (the training split's). `text`: the
    text column, its tokens (`word` or `char`), vocab and length."""
    records = []
    for j, column in enumerate(table.columns):
        cells = table.cells[j][~table.missing(j)]
        if text is not None and column == text[0]:
            _, kind, vocab, length = text
            words = text_mod.vocabulary(table.cells[j].tolist(), kind, vocab)
            records.append({"column": column, "kind": "text", "tokens": kind, "length": length, "vocab": words})
            continue
        numbers = _parsed(cells)
        if numbers is not None:
            mean = math.fsum(numbers.tolist()) / len(numbers) if len(numbers) else None
            records.append({"column": column, "kind": "number",
                            "mean": mean if mean is not None and math.isfinite(mean) else None})
        else:
            counts = Counter(cells.tolist())
            categories = sorted(counts)
            mode = min(categories, key=lambda c: (-counts[c], c))
            records.append({"column": column, "kind": "category", "categories": categories, "mode": mode})
    return Encoding(tuple(records))


def encode(encoding: Encoding, table: Table, source: Source, missing: str, predicting: bool = False
           ) -> tuple[np.ndarray, list[str]]:
    """The features of `table`'s rows (float32; int32 token ids for a text column) and warnings. A
    missing cell is filled as `missing=` says or is a DataError (see the module's docstring)."""
    position = {column: j for j, column in enumerate(table.columns)}
    parts, notes = [], []
    for record in encoding.columns:
        j = position[record["column"]]
        cells = table.cells[j]
        if record["kind"] == "text":
            ids, _ = text_mod.token_ids(cells.tolist(), record["tokens"], record["vocab"], record["length"])
            parts.append(ids)
            continue
        gone = table.missing(j)
        if gone.any():
            filler = record.get("mean") if record["kind"] == "number" else record.get("mode")
            refuse_missing(table, j, gone, source, missing, predicting, filler is None)  # unless filled
            cells = cells.copy()
            cells[gone] = str(filler) if record["kind"] == "category" else repr(filler)
        if record["kind"] == "number":
            parts.append(_numbers(table, j, cells, source)[:, None])
        else:
            part, note = _one_hot(cells, record, source)
            parts.append(part)
            notes += note
    if encoding.tokens:
        return parts[0], notes
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0), np.float32), notes


def _where(table: Table, i: int, j: int, source: Source) -> str:
    return source.value("x", (int(table.examples[i]), j))


def refuse_missing(table: Table, j: int, gone: np.ndarray, source: Source, missing: str, predicting: bool = False,
                   no_filler: bool = True) -> None:
    """A DataError for the first missing cell of column `j` (`gone`) unless `missing=` fills it here."""
    i = int(np.argmax(gone))
    shown = f" (`{table.cells[j][i]}`)" if table.cells[j][i] else ""
    where = f"{_where(table, i, j, source)}: the cell is missing{shown}"
    if missing == "mean" and not no_filler:
        return
    if missing == "mean":
        raise DataError(f"{where}, and column `{table.columns[j]}` has no value in the training split to fill "
                        "it with")
    if missing == "drop" and predicting:
        raise DataError(f"{where}: the model was trained with `missing=drop`, and a prediction answers every "
                        "row; fill the cell in")
    raise DataError(f"{where}; {FILL_HINT}")


def _parsed(cells: np.ndarray) -> np.ndarray | None:
    """Cells (Python strings) as float64, each read by Python's `float` as `_parse` reads one; None when
    one is no number."""
    try:
        return cells.astype(np.float64)
    except (ValueError, TypeError):
        return None


def _numbers(table: Table, j: int, cells: np.ndarray, source: Source) -> np.ndarray:
    """A number column's cells as float32; one that is no finite float32 is a DataError naming it."""
    values = _parsed(cells)
    if values is not None and (np.abs(values) < FLOAT32_LIMIT).all():  # NaN compares False
        return values.astype(np.float32)
    i = next(i for i, cell in enumerate(cells.tolist()) if float32_of(cell) is None)
    raise DataError(f"{_where(table, i, j, source)}: {not_float32(cells[i])}")


def _one_hot(cells: np.ndarray, record: dict, source: Source) -> tuple[np.ndarray, list[str]]:
    """A categorical column's cells one-hot; the rows of categories not seen in training all zeros,
    which a warning counts."""
    categories = record["categories"]
    need, memory = len(cells) * len(categories) * 4, machine_memory()
    if memory is not None and need > memory:
        raise DataError(f"column `{record['column']}` of {source} has {len(categories):,} categories: one-hot, its "
                        f"{len(cells):,} rows need {need / 2**30:,.1f} GiB, more than this machine's memory")
    position = {category: i for i, category in enumerate(categories)}
    index = np.array([position.get(cell, -1) for cell in cells.tolist()], dtype=np.int64).reshape(len(cells))
    known = index >= 0
    out = np.zeros((len(cells), len(categories)), np.float32)
    out[np.flatnonzero(known), index[known]] = 1.0
    if known.all():
        return out, []
    unseen = sorted(set(cells[~known].tolist()))
    shown = ", ".join(f"`{c}`" for c in unseen[:3]) + (f" and {len(unseen) - 3} more" if len(unseen) > 3 else "")
    rows = int((~known).sum())
    one = len(unseen) == 1
    return out, [f"column `{record['column']}` of {source}: {rows} row{'s' * (rows != 1)} "
                 f"hold{'s' * (rows == 1)} {'a category' if one else 'categories'} the training split lacks "
                 f"({shown}), encoded as all zeros"]


# --- the record in preprocessing.json (read by `runfolder`) -----------------------------------------


def _is_text_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value) and len(set(value)) == len(value)


def record_problem(record: object) -> str | None:
    """What is wrong with one column's record, in words after "must be"; None when nothing is."""
    if not isinstance(record, dict) or not isinstance(record.get("column"), str) or not record["column"]:
        return "a record naming its `column`"
    kind = record.get("kind")
    if kind == "number":
        mean = record.get("mean")
        ok = set(record) == {"column", "kind", "mean"} and (mean is None or isinstance(mean, (int, float))
                                                              and not isinstance(mean, bool) and math.isfinite(mean))
        return None if ok else "a `number` record with a finite `mean` or null"
    if kind == "category":
        categories = record.get("categories")
        ok = set(record) == {"column", "kind", "categories", "mode"} and _is_text_list(categories) and categories \
            and categories == sorted(categories) and (record["mode"] in categories)
        return None if ok else "a `category` record of sorted distinct `categories` and a `mode` among them"
    if kind == "text":
        length, vocab = record.get("length"), record.get("vocab")
        ok = set(record) == {"column", "kind", "tokens", "length", "vocab"} and record.get("tokens") in ("word", "char") \
            and isinstance(length, int) and not isinstance(length, bool) and length > 0 and _is_text_list(vocab)
        return None if ok else "a `text` record of `tokens` word or char, a positive `length` and a `vocab` list"
    return "a record of kind number, category or text"
