"""Real data for training: read a built-in dataset, a CSV or an NPZ file, then split it, encode its
labels, fit normalization on the training part and shape it for the device.

Every problem with the data is one `DataError` whose one-line message names the file and, where it
applies, the row and column: whoever wrote the data fixes it without reading a traceback.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import warnings
import zipfile
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc.compiler import ir
from dlc.compiler.datafacts import listing
from dlc.compiler.registry import lookup
from dlc.compiler.suggest import did_you_mean

HELD_OUT = ("val", "test")
# The model computes in float32, which rounds a number from 2^128 - 2^103 up (3.4e38) to infinity.
FLOAT32_LIMIT = 2.0**128 - 2.0**103


class DataError(ValueError):
    """Bad data: a one-line message naming the file and, where it applies, the row and column."""


class DataWarning(UserWarning):
    """Data that trains, but may make the model worse than it looks (a class only held-out parts
    hold, a feature that never changes): given with `warnings.warn` when `fit` prepares the data."""


@dataclass(frozen=True)
class Split:
    """One part of the data, ready for the device."""

    x: np.ndarray  # float32, (n, *input_shape)
    y: np.ndarray  # int32 (n,) for task "categorical"; float32 (n, k) for "binary" and "regression"


@dataclass(frozen=True)
class Prepared:
    train: Split
    val: Split | None
    test: Split | None
    normalization: dict  # {"kind", "shift", "scale"}: x_normalized = (x - shift) / scale per feature
    labels: list | None  # labels[i] is the class that index i in y stands for; None for regression
    columns: tuple[str, ...] = ()  # the CSV columns of x's features, in order; () when known by position
    warnings: tuple[str, ...] = ()  # one line each: what about the data may make the model worse than it looks


@dataclass(frozen=True)
class Source:
    """What messages call the data and, for a CSV file, where each value came from.

    `name` names the data in messages ("`iris.csv`", "the arrays"); `columns` name x's features in
    order (a CSV header's names; empty for arrays, whose features are known by position); `path`
    and `target` of a CSV let a message give the file row and column of a bad value."""

    name: str
    columns: tuple[str, ...] = ()
    path: Path | None = None
    target: str | None = None

    def __str__(self) -> str:
        return self.name

    def features(self, indices) -> str:
        """Features of the flattened examples as the data's owner knows them (the first few)."""
        shown = ", ".join(f"`{self.columns[j]}`" if self.columns else str(j) for j in indices[:5])
        more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
        kind = "column" if self.columns else "feature"
        return f"{kind}{'s' * (len(indices) > 1)} {shown}{more} of {self.name}"

    def feature(self, j: int) -> str:
        return self.features([j])

    def value(self, name: str, index: tuple) -> str:
        """Where element `index` of array `name` (`x`, `y`, `y_val`...) is: for a CSV file its row
        and column (the row found only now, for the message), else as NumPy indexing writes it."""
        if self.path is not None and name in ("x", "y"):
            column = self.target if name == "y" else self.columns[int(index[1])]
            return f"{self.name} row {_csv_line(self.path, int(index[0]))}, column `{column}`"
        return f"{_at(name, index)} in {self.name}"


# --- reading ----------------------------------------------------------------------------------


def load_source(data: ir.Data, columns: tuple[str, ...] = ()
                ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]], Source]:
    """Raw (x, y, given, source) from a built-in dataset, CSV or NPZ. `given` holds splits the file
    brings itself ({"val": (x_val, y_val), "test": (...)} from an NPZ's x_val/y_val/x_test/y_test).
    `columns`, the feature columns a run was trained on, are read from a CSV by name and in that
    order; by default every column but the target, in the file's order."""
    if data.source == "builtin":
        entry = lookup("dataset", data.name)
        source = Source(f"`{entry.name}`")
        shipped = _read_shipped(entry)
        if shipped is not None:
            return shipped[0], shipped[1], {}, source
        import sklearn.datasets  # a second to import: only when the shipped file is not as expected

        x, y = entry.load(sklearn.datasets)
        return np.asarray(x), np.asarray(y), {}, source
    path = Path(data.path or data.name)
    if data.source == "csv":
        if data.target is None:
            raise DataError(f"a CSV source needs `target=` naming the label column of `{path.name}`")
        x, y, source = _read_csv(path, data.target, with_target=True, columns=columns)
        return x, y, {}, source
    arrays = _read_npz(path, required=("x", "y"), held_out=True)
    given = {part: (arrays[f"x_{part}"], arrays[f"y_{part}"]) for part in HELD_OUT if f"x_{part}" in arrays}
    return arrays["x"], arrays["y"], given, Source(f"`{path.name}`")


def _read_shipped(entry) -> tuple[np.ndarray, np.ndarray] | None:
    """A built-in dataset read straight from the file in scikit-learn's wheel, without importing
    scikit-learn; None unless it is exactly what the registry says (then its loader is used)."""
    import importlib.util

    found = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if not entry.file or found is None or not found.submodule_search_locations:
        return None
    path = Path(found.submodule_search_locations[0]) / "datasets" / "data" / entry.file
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1 if entry.header else 0, dtype=np.float64, ndmin=2)
    except (OSError, ValueError):
        return None
    x, y = table[:, :-1], table[:, -1]
    if x.shape != (entry.examples, *entry.features) or not np.array_equal(y, np.round(y)) \
            or set(np.unique(y).astype(int)) != set(range(entry.classes)):
        return None
    return x, y.astype(np.int64)


def read_features(path: Path, *, target: str | None = None, with_target: bool = False,
                  columns: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray | None, Source]:
    """(x, y, source) from a .csv or .npz given at eval/predict time. Labels are read only
    `with_target` (evaluation), and must be there then: the CSV column `target` or the NPZ array
    `y`; otherwise y is None and labels are never read, blank or not. A CSV's features are the
    `columns` the model was trained on, found by header name (other columns are ignored); for a
    model trained without column names (on arrays), every column but `target`, by position."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, target, with_target=with_target, columns=columns)
    if suffix == ".npz":
        arrays = _read_npz(path, required=("x", "y") if with_target else ("x",))
        return arrays["x"], arrays.get("y"), Source(f"`{path.name}`")
    raise DataError(f"unsupported data file `{path.name}`: use a `.csv` file with a header row "
                    "or a `.npz` file with arrays `x` and `y`")


def _read_csv(path: Path, target: str | None, *, with_target: bool,
              columns: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray | None, Source]:
    """Features as float32 (examples, features) and, `with_target`, the `target` column, from a CSV
    file with a header row (which columns: see `read_features`). NumPy's C parser reads the file;
    should it refuse it, or read a feature that is no finite float32, the file is read again cell
    by cell, to name the row and column of the first bad value (or to read what only Python takes
    for a number, such as `1_000`)."""
    _require_file(path)
    header = _csv_header(path)
    if target not in header:
        if with_target:
            hint = did_you_mean(target, header) or f"its columns are {listing(header)}"
            raise DataError(f"`{path.name}` has no target column `{target}`: {hint}")
        target = None
    features = list(columns) or [column for column in header if column != target]
    missing = [column for column in features if column not in header]
    if missing:
        more = f" (nor {len(missing) - 1} more of its columns)" if len(missing) > 1 else ""
        hint = did_you_mean(missing[0], header)
        raise DataError(f"`{path.name}` has no column `{missing[0]}`, which the model was trained on{more}"
                        + (f": {hint}" if hint else ""))
    if not features:
        raise DataError(f"`{path.name}` has only the target column `{target}`: there are no features")
    wanted = [header.index(column) for column in features]
    target_at = header.index(target) if with_target else None
    source = Source(f"`{path.name}`", tuple(features), path, target if with_target else None)
    _require_room_for_csv(path, len(header))
    cells = _Cells() if with_target else None
    read = _csv_by_numpy(path, len(header), wanted, target_at, cells)
    if read is None:
        cells = _Cells() if with_target else None  # the fast pass may have stopped half-way
        read = _csv_by_cell(path, header, wanted, target_at, cells)
    x, codes = read
    return x, None if cells is None else _target_column(cells, codes, source), source


def _csv_records(path: Path):
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


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first row, each there and once."""
    records = _csv_records(path)
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


def _csv_line(path: Path, example: int) -> int:
    """The file line of example `example` (from 0) of a CSV file, for a message: blank lines and
    line breaks in quoted cells make the two differ."""
    examples = (line for line, row in itertools.islice(_csv_records(path), 1, None) if row)
    return next(itertools.islice(examples, example, None))


def _require_room_for_csv(path: Path, width: int) -> None:
    """Refuse a CSV file whose table would not fit in memory as float32, before reading it (a
    machine that runs out is more likely to kill the process than to report it): the number of
    rows is estimated from the file's size and the length of its first lines."""
    memory = _memory()
    if memory is None:
        return
    with path.open("rb") as f:
        head = f.read(1 << 16)
    rows = path.stat().st_size * max(1, head.count(b"\n")) / max(1, len(head))
    need = 2 * rows * width * 4  # the table and the features taken from it
    if need > memory:
        from dlc.runtime.memory import _human

        raise DataError(f"`{path.name}` holds about {rows:,.0f} rows of {width} columns: reading them needs about "
                        f"{_human(need)}, more than this machine's {_human(memory)} of memory")


class _Cells:
    """Numbers each distinct cell of a column in the order first met: the converter through which
    NumPy's parser reads the target column, so that class names are read at its speed too."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, cell: str) -> int:
        return self.seen.setdefault(cell, len(self.seen))


def _unread(cell: str) -> float:
    """The converter of a column that is not used: its cells are never parsed."""
    return 0.0


def _csv_by_numpy(path: Path, width: int, wanted: list[int], target_at: int | None,
                  cells: _Cells | None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(features, target cells as codes of `cells`) read by NumPy's C parser; None when it refuses
    the file or reads a feature that is no finite float32: `_csv_by_cell` then says where and why."""
    converters = {i: _unread for i in range(width) if i not in wanted and i != target_at}
    if cells is not None:
        converters[target_at] = cells
    try:
        with path.open(newline="", encoding="utf-8-sig") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy warns of a file without rows: `_csv_by_cell` refuses it
            next(csv.reader(f), None)  # the header, as `_csv_header` read it
            table = np.loadtxt(f, dtype=np.float32, delimiter=",", quotechar='"', comments=None, ndmin=2,
                               converters=converters)
    except MemoryError:
        raise DataError(f"`{path.name}` does not fit in this machine's memory") from None
    except (ValueError, OSError, csv.Error):  # a cell that is no number, a ragged row; UnicodeDecodeError too
        return None
    # float32 holds every integer up to 2^24 exactly: more distinct cells would lose their codes.
    if table.shape[1] != width or not len(table) or (cells is not None and len(cells.seen) > 2**24):
        return None
    x = table if wanted == list(range(width)) else table[:, wanted]
    if not (np.isfinite(x.min(0)).all() and np.isfinite(x.max(0)).all()):
        return None
    return x, None if target_at is None else table[:, target_at].astype(np.int64)


def _csv_by_cell(path: Path, header: list[str], wanted: list[int], target_at: int | None,
                 cells: _Cells | None) -> tuple[np.ndarray, np.ndarray | None]:
    """What `_csv_by_numpy` reads, read cell by cell with the csv module: the first ragged row or
    bad cell is a DataError naming its row (its line in the file) and column."""
    values, codes, rows = array("f"), array("q"), 0
    for line, row in itertools.islice(_csv_records(path), 1, None):
        if not row:
            continue  # a blank line holds no example
        if len(row) != len(header):
            raise DataError(f"`{path.name}` row {line} has {len(row)} cells, the header has {len(header)}")
        for i in wanted:
            value = _float32(row[i])
            if value is None:
                raise DataError(f"`{path.name}` row {line}, column `{header[i]}`: {_not_float32(row[i])}")
            values.append(value)
        if cells is not None:
            codes.append(cells(row[target_at]))
        rows += 1
    if not rows:
        raise DataError(f"`{path.name}` has a header but no rows")
    x = np.frombuffer(values, np.float32).reshape(rows, len(wanted))
    return x, None if cells is None else np.frombuffer(codes, np.int64)


def _parse(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _float32(cell: str) -> float | None:
    """A cell's number, if float32 holds it: finite, and not so large that float32 rounds it to infinity."""
    value = _parse(cell)
    return value if value is not None and abs(value) < FLOAT32_LIMIT else None  # NaN compares False


def _not_float32(cell: str) -> str:
    """Why `_float32` refused a cell, for a message."""
    value = _parse(cell)
    if value is None:
        return f"`{cell}` is not a number" if cell.strip() else "the cell is empty"
    if not math.isfinite(value):
        return f"`{cell}` is not a finite number"
    return f"`{cell}` is beyond float32's range (±3.4e38), which the model computes in"


def _target_column(cells: _Cells, codes: np.ndarray, source: Source) -> np.ndarray:
    """The target cells as numbers when every one is a number (integers when all are whole and
    exact in float64), else as text: class names. A bad cell is named by its row and column."""
    distinct = list(cells.seen)
    numbers = [_parse(cell) for cell in distinct]
    if all(value is not None for value in numbers):
        values = np.array(numbers)
        if not np.isfinite(values).all():
            first = int(np.argmin(np.isfinite(values)[codes]))
            raise DataError(f"{source.value('y', (first,))}: `{distinct[codes[first]]}` is not a finite number")
        whole = np.array_equal(values, np.round(values)) and np.abs(values).max() < 2**53
        return (values.astype(np.int64) if whole else values)[codes]
    empty = np.array([not cell.strip() for cell in distinct])
    if empty.any():
        raise DataError(f"{source.value('y', (int(np.argmax(empty[codes])),))}: the cell is empty")
    return np.array([cell.strip() for cell in distinct])[codes]


def _read_npz(path: Path, required: tuple[str, ...], *, held_out: bool = False) -> dict[str, np.ndarray]:
    """The `required` arrays and, `held_out`, those of x_val, y_val, x_test, y_test that are present,
    loaded without unpickling; no other array is read."""
    _require_file(path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"`{path.name}` is not an NPZ archive: write it with `numpy.savez(path, x=..., y=...)`")
    names = (*required, *(f"{a}_{part}" for part in HELD_OUT for a in "xy" if held_out))
    arrays = {}
    try:
        _require_room(path, names)
        with np.load(path, allow_pickle=False) as archive:
            for name in (name for name in names if name in archive.files):
                try:
                    arrays[name] = archive[name]
                except ValueError as e:
                    if "allow_pickle" in str(e):  # NumPy's answer to an object array
                        raise DataError(f"array `{name}` in `{path.name}` holds Python objects, which are never "
                                        "loaded (they would need unpickling): save numeric arrays") from None
                    raise DataError(f"cannot read array `{name}` in `{path.name}`: {e}") from None
    except MemoryError:  # a header that declares more than there is memory for, whatever the file holds
        raise DataError(f"`{path.name}` declares arrays larger than this machine's memory") from None
    # An unknown compression method raises NotImplementedError, an encrypted member RuntimeError.
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as e:
        raise DataError(f"cannot read `{path.name}` as an NPZ archive: {e}") from None
    for name in required:
        if name not in arrays:
            raise DataError(f"`{path.name}` has no array `{name}`: an NPZ source holds arrays `x` and `y`")
    for name, values in arrays.items():
        if values.ndim == 0:
            raise DataError(f"array `{name}` in `{path.name}` is a single value, not examples")
        if name.startswith("x") and values.ndim == 1:
            arrays[name] = values.reshape(-1, 1)  # one feature per example, as `dlc check` reads it
    for suffix in ("", *(f"_{part}" for part in HELD_OUT)):
        x, y = arrays.get("x" + suffix), arrays.get("y" + suffix)
        if suffix and (x is None) != (y is None):
            raise DataError(f"`{path.name}` has `{'x' if y is None else 'y'}{suffix}` without "
                            f"`{'y' if y is None else 'x'}{suffix}`")
        if x is not None and y is not None and len(x) != len(y):
            raise DataError(f"`{path.name}`: `x{suffix}` has {len(x)} examples but `y{suffix}` has {len(y)}")
    return arrays


def _require_file(path: Path) -> None:
    """A DataError unless `path` is a regular file, by the rule `dlc check` applies: a folder, a device,
    a pipe or a kernel file is never read."""
    from dlc.compiler.datafacts import data_file_problem  # the rule is declared once, with the checker's

    problem = data_file_problem(path)
    if problem:
        raise DataError(f"data file `{path}` {problem}")


def _memory() -> int | None:
    """This machine's memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _require_room(path: Path, names: tuple[str, ...]) -> None:
    """Refuse an archive whose arrays, unpacked, would not fit in memory (a zip bomb, say), before
    unpacking anything: the sizes come from the archive's directory, which reading then enforces."""
    with zipfile.ZipFile(path) as archive:
        size = sum(info.file_size for info in archive.infolist() if info.filename.removesuffix(".npy") in names)
    memory = _memory()
    if memory is not None and size > memory:
        from dlc.runtime.memory import _human

        raise DataError(f"`{path.name}` unpacks to {_human(size)}, more than this machine's {_human(memory)} of memory")


# --- preparing --------------------------------------------------------------------------------


def prepare(x, y, *, task: str, input_shape: tuple[int, ...] | None, output_units: int | None,
            val: float, test: float, normalize: str, shuffle: bool, seed: int,
            given: dict | None = None, labels: list | None = None, source: str | Source = "the data") -> Prepared:
    """Split (seeded; for classification each held-out part takes every class in proportion; `test`
    and `val` are fractions of the whole), encode labels, fit normalization on train only and apply
    it to every split, reshape x to `input_shape` (same element count, checked first).

    `task` is "categorical", "binary" or "regression" (from the loss); `labels` is a saved mapping to
    encode with (for evaluation); `given` holds splits the data brought itself, {"val": (x, y), ...};
    `source` is the data's `Source` (from `load_source`), or just its name in messages, e.g.
    "`houses.csv`". shuffle=False splits by position: train first, then val, then test at the end.
    """
    source = source if isinstance(source, Source) else Source(source)
    given = given or {}
    x = _examples(x, "x", source)
    example = x.shape[1:]
    _check_input_shape(example, input_shape, source)
    ys = {"all": _targets(y, len(x), "y", source)}
    xs = {}
    for part, (part_x, part_y) in given.items():
        fraction = {"val": val, "test": test}[part]
        if fraction > 0:
            raise DataError(f"{source} brings its own `x_{part}`, and `{part}={fraction:g}` asks for another "
                            f"{part} split: drop `{part}=`")
        xs[part] = _examples(part_x, f"x_{part}", source)
        if xs[part].shape[1:] != example:
            raise DataError(f"examples in `x_{part}` of {source} have shape {_shape(xs[part].shape[1:])} "
                            f"but those in `x` have {_shape(example)}")
        ys[part] = _targets(part_y, len(xs[part]), f"y_{part}", source)
    encoded, labels = ENCODERS[task](ys, labels, output_units, source)
    all_y = encoded.pop("all")

    strata = all_y.reshape(len(x), -1)
    stratify = task != "regression" and strata.shape[1] == 1
    parts = _split_indices(len(x), val, test, shuffle=shuffle, seed=seed,
                           strata=strata[:, 0].astype(np.int64) if stratify else None, source=source)
    # A train part that is all of the data, in order (nothing held out), is the data: no copy.
    xs |= {part: x if len(index) == len(x) else x[index] for part, index in parts.items()}
    encoded |= {part: all_y[index] for part, index in parts.items()}
    normalization, notes = _fit_normalization(xs["train"].reshape(len(xs["train"]), -1), normalize, source)
    if stratify:
        notes += _untrained_classes(encoded, labels)
    shape = tuple(input_shape or example)

    def ready(part: str) -> Split | None:
        if part not in xs:
            return None
        part_x = _normalized(xs[part], normalization, source)
        return Split(part_x.reshape(len(part_x), *shape), encoded[part])

    return Prepared(ready("train"), ready("val"), ready("test"), normalization, labels, source.columns, tuple(notes))


def apply_normalization(x: np.ndarray, normalization: dict, input_shape, source: str | Source = "the data"
                        ) -> np.ndarray:
    """For evaluation/prediction on new data: flatten per example, (x - shift) / scale, reshape."""
    source = source if isinstance(source, Source) else Source(source)
    x = _examples(x, "x", source)
    _check_input_shape(x.shape[1:], input_shape, source)
    if normalization["kind"] != "none":
        _check_input_shape(x.shape[1:], (len(normalization["shift"]),), source)
    return _normalized(x, normalization, source).reshape(len(x), *(input_shape or x.shape[1:]))


def _examples(x, name: str, source: Source) -> np.ndarray:
    """x as float64 (n, ...): numeric, one row per example, at least one example, all finite."""
    try:
        x = np.asarray(x)
    except ValueError:  # NumPy refuses ragged nested lists
        raise DataError(f"`{name}` in {source} is ragged: every example needs the same shape") from None
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"`{name}` in {source} has no examples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"`{name}` in {source} holds {_holds(x.dtype)}, not numbers")
    if x.ndim < 2:
        raise DataError(f"`{name}` in {source} has shape {x.shape}: it needs one row per example, "
                        "shaped (examples, features...)")
    if x[0].size == 0:
        raise DataError(f"examples in `{name}` of {source} have no features")
    # float32 stays float32 (what the device trains on: no float64 copy of a large set); other
    # numbers become float64. Normalization statistics are computed in float64 either way.
    x = x if x.dtype == np.float32 else x.astype(np.float64)
    _require_finite(x, name, source)
    return x


def _targets(y, n: int, name: str, source: Source) -> np.ndarray:
    """y as an array with one entry per example; text from a Python object array becomes str."""
    y = np.asarray(y)
    if y.dtype.kind == "O":  # e.g. a pandas column of class names
        y = np.array(y.tolist())
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"`x{name[1:]}` in {source} has {n} examples but `{name}` has "
                        f"{len(y) if y.ndim else 'a single value'}")
    return y


def _require_finite(values: np.ndarray, name: str, source: Source, float32: bool = False) -> None:
    """A DataError counting the NaN or infinite values (`float32`: made infinite by the cast to it)."""
    bad = ~np.isfinite(values)
    if bad.any():
        count = int(bad.sum())
        first = np.unravel_index(np.argmax(bad), values.shape)
        values = f"value{'s' * (count != 1)}"
        what = f"{values} beyond float32's range (±3.4e38)" if float32 else f"NaN or infinite {values}"
        where = source.value(name, first) if source.path else _at(name, first)
        raise DataError(f"`{name}` in {source} has {count} {what}, the first at {where}")


def _check_input_shape(example: tuple[int, ...], input_shape, source: Source) -> None:
    """The model takes as many values per example as the data has (`input` may re-shape them)."""
    if input_shape is not None and math.prod(example) != math.prod(input_shape):
        raise DataError(f"examples in {source} have {math.prod(example)} values but the model takes "
                        f"{math.prod(input_shape)}")


def _at(name: str, index: tuple) -> str:
    """An element's place as NumPy indexing writes it, e.g. `x[17, 3]`."""
    return f"`{name}[{', '.join(str(int(i)) for i in index)}]`"


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _holds(dtype: np.dtype) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects"}.get(dtype.kind, f"`{dtype}` values")


# --- labels -----------------------------------------------------------------------------------


def _class_labels(y: np.ndarray, name: str, source: Source) -> np.ndarray:
    """y as one class label per example: text, integers or booleans (whole floats become integers)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"`{name}` in {source} has shape {y.shape}: a categorical loss needs one class label "
                        f"per example (for one-hot rows, pass `{name}.argmax(1)`)")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(f"{source.value(name, (i,))} is {y[i]:g}, not a class label: a classification "
                            "loss needs integers or names")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuU":
        raise DataError(f"`{name}` in {source} holds {_holds(y.dtype)}, not class labels")
    return y


def _index(ys: dict[str, np.ndarray], labels: list, source: Source) -> dict[str, np.ndarray]:
    """Each label replaced by its position in `labels`; the first example whose label is not there
    is a DataError naming it and the model's classes."""
    position = {label: i for i, label in enumerate(labels)}
    out = {}
    for part, y in ys.items():
        found, inverse = np.unique(y, return_inverse=True)
        unknown = np.array([label not in position for label in found.tolist()])
        if unknown.any():
            first = int(np.argmax(unknown[inverse]))
            shown = ", ".join(f"`{label}`" for label in labels[:4]) + (", ..." if len(labels) > 4 else "")
            raise DataError(f"{source.value(_y_name(part), (first,))} is `{y[first]}`, which is not one of the "
                            f"model's {len(labels)} classes ({shown})")
        out[part] = np.array([position[label] for label in found.tolist()], dtype=np.int32)[inverse]
    return out


def _sorted_labels(ys: dict[str, np.ndarray]) -> list:
    """Every label found, sorted (numbers before text, should the parts disagree)."""
    found = {label for y in ys.values() for label in np.unique(y).tolist()}
    return sorted(found, key=lambda label: (isinstance(label, str), label))


def _categorical(ys, labels, output_units, source):
    ys = {part: _class_labels(y, _y_name(part), source) for part, y in ys.items()}
    labels = list(labels) if labels is not None else _sorted_labels(ys)
    if output_units is not None and len(labels) > output_units:
        raise DataError(f"labels in {source} have {len(labels)} classes but the output has {output_units} units")
    return _index(ys, labels, source), labels


def _binary(ys, labels, output_units, source):
    ys = {part: y.reshape(len(y), 1) if y.ndim == 1 else y for part, y in ys.items()}
    width = ys["all"].shape[1:]
    for part, y in ys.items():
        if y.shape[1:] != width:
            raise DataError(f"`{_y_name(part)}` in {source} has shape {y.shape} but `y` has {ys['all'].shape}")
    width = math.prod(width)
    if output_units is not None and width != output_units:
        raise DataError(f"targets in {source} have {width} column{'s' * (width != 1)} "
                        f"but the output has {output_units} unit{'s' * (output_units != 1)}")
    if width == 1:
        ys = {part: _class_labels(y, _y_name(part), source) for part, y in ys.items()}
        if labels is None:
            labels = _sorted_labels(ys)
            if set(labels) <= {0, 1}:
                labels = [0, 1]
            elif len(labels) > 2:
                shown = ", ".join(f"`{label}`" for label in labels[:4])
                raise DataError(f"a binary loss needs two classes, but {source} has {len(labels)} ({shown}"
                                f"{', ...' if len(labels) > 4 else ''})")
        indices = _index(ys, list(labels), source)
        return {part: y.astype(np.float32).reshape(-1, 1) for part, y in indices.items()}, list(labels)
    for part, y in ys.items():  # several labels per example, each 0 or 1
        flat = y.reshape(len(y), -1)
        bad = (flat != 0) & (flat != 1)
        if bad.any():
            first = np.unravel_index(np.argmax(bad), flat.shape)
            raise DataError(f"{_at(_y_name(part), first)} in {source} is {flat[first]}: several labels per "
                            "example must each be 0 or 1")
    return {part: y.reshape(len(y), -1).astype(np.float32) for part, y in ys.items()}, [0, 1]


def _regression(ys, labels, output_units, source):
    out = {}
    for part, y in ys.items():
        name = _y_name(part)
        y = _numbers(y, name, source).reshape(len(y), -1)
        _require_finite(y, name, source)
        with np.errstate(over="ignore"):
            out[part] = y.astype(np.float32)
        _require_finite(out[part], name, source, float32=True)
    width = out["all"].shape[1]
    for part, y in out.items():
        if y.shape[1] != width:
            raise DataError(f"`{_y_name(part)}` in {source} has {y.shape[1]} targets per example but `y` has {width}")
    if output_units is not None and width != output_units:
        raise DataError(f"targets in {source} have {width} value{'s' * (width != 1)} per example "
                        f"but the output has {output_units} unit{'s' * (output_units != 1)}")
    return out, None


def _numbers(y: np.ndarray, name: str, source: Source) -> np.ndarray:
    """y as float64; text is read number by number, so that the first that is not one is named."""
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    values = np.empty(y.shape)
    for index in np.ndindex(y.shape):
        try:
            values[index] = float(y[index])
        except (TypeError, ValueError):
            raise DataError(f"{source.value(name, index)} is `{y[index]}`, not a number: "
                            "a regression loss needs numeric targets") from None
    return values


def _y_name(part: str) -> str:
    return "y" if part == "all" else f"y_{part}"


# Each task's encoder: (targets per part, saved labels, output units, source) -> (encoded per part, labels).
ENCODERS = {"categorical": _categorical, "binary": _binary, "regression": _regression}


# --- splitting and normalization --------------------------------------------------------------


def _split_indices(n: int, val: float, test: float, *, shuffle: bool, seed: int, strata: np.ndarray | None,
                   source: Source) -> dict[str, np.ndarray]:
    """Example indices per part: a seeded permutation (or the file order) cut into train, val, test."""
    sizes = {part: max(1, round(fraction * n)) if fraction > 0 else 0
             for part, fraction in (("test", test), ("val", val))}
    if sum(sizes.values()) >= n:
        raise DataError(f"{source} has {n} example{'s' * (n != 1)}: too few to hold out "
                        f"{sizes['val']} for `val` and {sizes['test']} for `test` and still train")
    if not any(sizes.values()):
        return {"train": np.arange(n)}  # nothing held out: every epoch shuffles the training data anyway
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    if strata is None or not shuffle:
        train_end, val_end = n - sizes["val"] - sizes["test"], n - sizes["test"]
        parts = {"train": order[:train_end], "val": order[train_end:val_end], "test": order[val_end:]}
    else:
        parts = _stratified(order, strata, sizes)
    return {part: index for part, index in parts.items() if len(index)}


def _stratified(order: np.ndarray, strata: np.ndarray, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Held-out parts (test first) that take every class in proportion to what is left of it; each
    part keeps the shuffled order."""
    pools = [order[strata[order] == c] for c in np.unique(strata)]  # each class in shuffled order
    left = np.array([len(pool) for pool in pools])
    taken = np.zeros_like(left)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    parts = {}
    for part, size in sizes.items():
        share = _apportion(size, left)
        parts[part] = np.concatenate([pool[t:t + s] for pool, t, s in zip(pools, taken, share, strict=True)])
        taken, left = taken + share, left - share
    parts["train"] = np.concatenate([pool[t:] for pool, t in zip(pools, taken, strict=True)])
    return {part: index[np.argsort(rank[index])] for part, index in parts.items()}


def _apportion(size: int, counts: np.ndarray) -> np.ndarray:
    """`size` whole examples shared in proportion to `counts`, largest remainders first."""
    quota = size * counts / counts.sum()
    share = np.floor(quota).astype(counts.dtype)
    share[np.argsort(share - quota, kind="stable")[:size - share.sum()]] += 1
    return share


# Each kind's (shift, scale) per feature of the flattened training examples.
NORMALIZERS = {
    "standard": lambda flat: (flat.mean(0, dtype=np.float64), flat.std(0, dtype=np.float64)),
    "minmax": lambda flat: (flat.min(0).astype(np.float64), np.ptp(flat, 0).astype(np.float64)),
}


def _fit_normalization(flat: np.ndarray, kind: str, source: Source) -> tuple[dict, list[str]]:
    """Per-feature shift and scale from the training part, and warnings. A constant feature is only
    shifted (to 0: nothing to learn from, which a warning says); a statistic that overflows is a
    DataError naming its feature (an infinite scale would make the feature 0 everywhere)."""
    if kind == "none":
        return {"kind": "none", "shift": [], "scale": []}, []
    with np.errstate(over="ignore", invalid="ignore"):
        shift, scale = NORMALIZERS[kind](flat)
        spread = np.ptp(flat, 0)
    overflowed = ~(np.isfinite(shift) & np.isfinite(scale))
    if overflowed.any():
        j = int(np.argmax(overflowed))
        statistic = "range" if kind == "minmax" else "mean" if not np.isfinite(shift[j]) else "standard deviation"
        raise DataError(f"{source.feature(j)} cannot be normalized: its {statistic} overflows (its values reach "
                        f"{np.abs(flat[:, j]).max():g}); scale it down before training")
    constant = np.flatnonzero(spread == 0)
    notes = []
    if len(constant):
        them = "it" if len(constant) == 1 else "them"
        notes.append(f"{source.features(constant)} {'is' if len(constant) == 1 else 'are'} constant in the training "
                     f"split: `normalize={kind}` makes {them} 0, so the model learns nothing from {them}")
    scale = np.where(spread == 0, 1.0, scale)
    return {"kind": kind, "shift": shift.tolist(), "scale": scale.tolist()}, notes


def _untrained_classes(encoded: dict[str, np.ndarray], labels: list) -> list[str]:
    """A warning naming the classes that held-out parts hold but the training part lacks: the model
    cannot learn them, and every one of their examples counts against it."""
    trained = set(np.unique(encoded["train"]).tolist())
    held = {part: set(np.unique(y).tolist()) - trained for part, y in encoded.items() if part != "train"}
    missing = sorted(set().union(*held.values()))
    if not missing:
        return []
    one = len(missing) == 1
    names = ", ".join(f"`{labels[int(k)]}`" for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
    parts = " and ".join(part for part in HELD_OUT if held.get(part))
    return [f"class{'' if one else 'es'} {names} {'is' if one else 'are'} in the {parts} split but not in the "
            f"training split: the model cannot learn {'it' if one else 'them'}"]


def _normalized(x: np.ndarray, normalization: dict, source: Source) -> np.ndarray:
    """Examples flattened, normalized and in float32, which must hold every value: one that it
    cannot (too large, or made so by normalization) is a DataError naming its feature."""
    flat = x.reshape(len(x), -1)
    kind = normalization["kind"]
    with np.errstate(over="ignore", invalid="ignore"):
        out = flat
        if kind != "none":
            dtype = flat.dtype if flat.dtype == np.float32 else np.float64
            out = (flat - np.asarray(normalization["shift"], dtype)) / np.asarray(normalization["scale"], dtype)
        out = out.astype(np.float32, copy=False)
    finite = np.isfinite(out.min(0)) & np.isfinite(out.max(0))
    if not finite.all():
        j = int(np.argmin(finite))
        value = float(flat[int(np.argmin(np.isfinite(out[:, j]))), j])
        if kind == "none":
            raise DataError(f"{source.feature(j)} holds {value:g}, beyond float32's range (±3.4e38), which the "
                            "model computes in: scale it down, or set `normalize=standard`")
        made = (value - normalization["shift"][j]) / normalization["scale"][j]
        raise DataError(f"{source.feature(j)} holds {value:g}, which `normalize={kind}` makes {made:g}, "
                        "beyond float32's range (±3.4e38), which the model computes in")
    return out
