"""Preparing a CSV's `Table` for training (`data.prepare` prepares arrays): rows with a missing cell
dropped under `missing=drop`, labels encoded, the seeded split, the column encoding fitted on the
training part (`encoding.py`), then normalization, fitted on the training part's number features
only: one-hot features stay 0 and 1, and token ids are never normalized."""

from __future__ import annotations

import dataclasses

import numpy as np

from dlc.compiler import ir
from dlc.runtime import data as data_mod
from dlc.runtime import encoding as enc
from dlc.runtime.sources import DataError, Source
from dlc.runtime.table import Table, drop_missing

_NONE = {"kind": "none", "shift": [], "scale": []}


def prepare_table(table: Table, y: np.ndarray, *, task: str, val: float, test: float, normalize: str,
                  shuffle: bool, seed: int, missing: str, text: tuple[str, str, int, int] | None, source: Source,
                  labels: list | None = None, normalization: dict | None = None,
                  encoding: enc.Encoding | None = None) -> tuple[data_mod.Prepared, np.ndarray]:
    """(the prepared splits, flat, and the labels of the rows kept). `labels`, `normalization` and
    `encoding` are a trained model's, to apply in place of fitting them here; `text` is the text
    column, its tokens, vocab and length (see `encoding.fit`)."""
    notes = []
    if missing == "drop":
        table, y, dropped = drop_missing(table, y, text[0] if text else None)
        if dropped:
            notes.append(f"{dropped} row{'s' * (dropped != 1)} of {source} with a missing cell "
                         f"{'were' if dropped != 1 else 'was'} dropped (`missing=drop`)")
        if not len(table):
            raise DataError(f"every row of {source} has a missing cell: `missing=drop` leaves none")
    if missing == "error":  # the file's first missing cell, before the split reorders the rows
        first = min(((int(np.argmax(gone)), j) for j in range(len(table.columns))
                     if table.columns[j] != (text[0] if text else None) and (gone := table.missing(j)).any()),
                    default=None)
        if first is not None:
            enc.refuse_missing(table, first[1], table.missing(first[1]), source, missing)
    _refuse_missing_labels(table, source, missing)
    ys = {"all": data_mod._targets(y, len(table), "y", source)}
    encoded, labels = data_mod.ENCODERS[task](ys, labels, None, source)
    all_y = encoded.pop("all")
    strata = all_y.reshape(len(table), -1)
    stratify = task != "regression" and strata.shape[1] == 1
    parts = data_mod._split_indices(len(table), val, test, shuffle=shuffle, seed=seed,
                                    strata=strata[:, 0].astype(np.int64) if stratify else None, source=source)
    if encoding is None:
        encoding = enc.fit(table.rows(parts["train"]), source, text)
        notes += _identifiers(encoding, len(parts["train"]), source)
    xs = {}
    for part, index in parts.items():
        xs[part], unseen = enc.encode(encoding, table.rows(index), source, missing)
        notes += [f"the {part} split: {note}" for note in unseen]
    if normalization is None:
        normalization, fitted_notes = fit_normalization(xs["train"], encoding, normalize, source)
        notes += fitted_notes
    if stratify:
        notes += data_mod._untrained_classes({part: all_y[index] for part, index in parts.items()}, labels)
    splits = {part: data_mod.Split(normalized(x, encoding, normalization, source), all_y[parts[part]])
              for part, x in xs.items()}
    prepared = data_mod.Prepared(splits["train"], splits.get("val"), splits.get("test"), normalization, labels,
                                 table.columns, tuple(notes), encoding)
    return prepared, y


# A categorical column with more categories than this share of its training rows (and at least
# IDENTIFIER_LEAST) reads like an identifier or free text, which one-hot encodes into nothing to learn.
IDENTIFIER_SHARE, IDENTIFIER_LEAST = 0.5, 20


def _identifiers(encoding: enc.Encoding, rows: int, source: Source) -> list[str]:
    """A warning for each categorical column whose categories are nearly as many as the training rows."""
    return [f"column `{column}` of {source} has {width:,} categories in {rows:,} training rows: one-hot, nearly "
            "every row is a category of its own, which the model cannot learn from (an identifier or free text? "
            "drop the column, or read it with `text=`)"
            for column, width in encoding.categorical if width >= max(IDENTIFIER_LEAST, IDENTIFIER_SHARE * rows)]


def _refuse_missing_labels(table: Table, source: Source, missing: str) -> None:
    """A missing target cell is never filled in: a DataError naming it, unless its row was dropped."""
    if table.label_missing.any():
        i = int(np.argmax(table.label_missing))
        raise DataError(f"{source.value('y', (int(table.examples[i]),))}: the cell is missing, and a label is never "
                        f"filled in{' (`missing=mean` fills features only)' if missing == 'mean' else ''}: set "
                        "`missing=drop` on `data` to drop its row")


def fit_normalization(train: np.ndarray, encoding: enc.Encoding, normalize: str, source: Source
                      ) -> tuple[dict, list[str]]:
    """`data`'s normalization fitted on the number features of the training part; a one-hot feature
    is shifted by 0 and scaled by 1 (left as it is), and token ids have none."""
    if encoding.tokens:  # ids, never scaled: the checker refuses `normalize=` on a text column (E607)
        return dict(_NONE), []
    numeric = encoding.numeric()
    if normalize == "none" or not numeric.any():
        return dict(_NONE), []
    names = tuple(np.array(encoding.feature_names())[numeric].tolist())
    fitted, notes = data_mod._fit_normalization(train[:, numeric], normalize,
                                                dataclasses.replace(source, columns=names))
    shift, scale = np.zeros(len(numeric)), np.ones(len(numeric))
    shift[numeric], scale[numeric] = fitted["shift"], fitted["scale"]
    return {"kind": normalize, "shift": shift.tolist(), "scale": scale.tolist()}, notes


def normalized(x: np.ndarray, encoding: enc.Encoding, normalization: dict, source: Source) -> np.ndarray:
    """Encoded features as the model takes them: token ids as they are, other features normalized."""
    if encoding.tokens:
        return x
    return data_mod._normalized(x, normalization, dataclasses.replace(source, columns=encoding.feature_names()))


def split_of(program: ir.Program, x: Table, y: np.ndarray, source: Source, seed: int,
             **kept) -> tuple[data_mod.Prepared, np.ndarray]:
    """`prepare_table` as `program`'s data options say (with `seed`), `kept` a trained model's labels,
    normalization and encoding."""
    d = program.data
    text = None if d.text is None else (d.text, d.tokenize, d.vocab, d.features[0])
    return prepare_table(x, y, task=program.task, val=d.val, test=d.test, normalize=d.normalize, shuffle=d.shuffle,
                         seed=seed, missing=d.missing, text=text, source=source, **kept)


def shaped(prepared: data_mod.Prepared, input_shape: tuple[int, ...]) -> data_mod.Prepared:
    """`prepared` with each split's examples shaped as the model's input (`input` may re-shape them)."""
    def ready(split: data_mod.Split | None) -> data_mod.Split | None:
        return None if split is None else data_mod.Split(split.x.reshape(len(split.x), *input_shape), split.y)

    return dataclasses.replace(prepared, train=ready(prepared.train), val=ready(prepared.val),
                               test=ready(prepared.test))


def identity(columns: tuple[str, ...]) -> enc.Encoding:
    """The encoding of a model trained on numbers alone, before encodings were recorded: each column a
    number, without a mean to fill a missing cell with."""
    return enc.Encoding(tuple({"column": column, "kind": "number", "mean": None} for column in columns))


def rows_of(x, source: Source | str, encoding: enc.Encoding | None) -> Table | None:
    """New examples as a Table to encode: `x` itself, or the file it was read from again, its cells as
    text, when a column is categorical or text and NumPy read it as numbers; None for arrays given to
    the Python API, which are the model's input as it is."""
    if isinstance(x, Table):
        return x
    if encoding is None or not encoding.reads_text or not isinstance(source, Source) or source.path is None:
        return None
    from dlc.runtime.sources import read_table

    return read_table(source.path, source.columns)[0]


def features(table: Table, prepared: data_mod.Prepared, input_shape: tuple[int, ...], missing: str,
             source: Source, predicting: bool) -> np.ndarray:
    """New rows encoded and normalized as the model was trained, shaped as its input; a row with a
    category the training split lacked is warned of (DataWarning)."""
    import warnings

    encoding = prepared.encoding or identity(table.columns)
    x, notes = enc.encode(encoding, table, source, missing, predicting)
    for note in notes:
        warnings.warn(data_mod.DataWarning(note), stacklevel=3)
    x = normalized(x, encoding, prepared.normalization, source)
    return x.reshape(len(x), *input_shape)


def kept_rows(table: Table, y: np.ndarray, missing: str, source: Source, encoding: enc.Encoding | None
              ) -> tuple[Table, np.ndarray]:
    """Rows to evaluate on: under `missing=drop`, those without a missing cell (a DataWarning counts the
    others); a missing label is a DataError otherwise."""
    import warnings

    if missing == "drop":
        text = next((r["column"] for r in encoding.columns if r["kind"] == "text"), None) if encoding else None
        table, y, dropped = drop_missing(table, y, text)
        if dropped:
            warnings.warn(data_mod.DataWarning(f"{dropped} row{'s' * (dropped != 1)} of {source} with a missing "
                                               "cell dropped (`missing=drop`)"), stacklevel=3)
    _refuse_missing_labels(table, source, missing)
    return table, y


def encoded_labels(y: np.ndarray, task: str, labels: list | None, output_units: int, source: Source) -> np.ndarray:
    """New rows' labels encoded with a trained model's `labels`."""
    encoded, _ = data_mod.ENCODERS[task]({"all": data_mod._targets(y, len(y), "y", source)}, labels, output_units,
                                         source)
    return encoded["all"]
