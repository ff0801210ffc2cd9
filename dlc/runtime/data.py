"""Real data for training: read a built-in dataset, a CSV or an NPZ file, then split it, encode its
labels, fit normalization on the training part and shape it for the device.

Every problem with the data is one `DataError` whose one-line message names the file and, where it
applies, the row and column: whoever wrote the data fixes it without reading a traceback.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc.compiler import ir
from dlc.compiler.registry import lookup
from dlc.compiler.suggest import did_you_mean

HELD_OUT = ("val", "test")


class DataError(ValueError):
    """Bad data: a one-line message naming the file and, where it applies, the row and column."""


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


# --- reading ----------------------------------------------------------------------------------


def load_source(data: ir.Data) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Raw (x, y, given) from a built-in dataset, CSV or NPZ. `given` holds splits the file brings
    itself ({"val": (x_val, y_val), "test": (...)} from an NPZ's x_val/y_val/x_test/y_test)."""
    if data.source == "builtin":
        entry = lookup("dataset", data.name)
        shipped = _read_shipped(entry)
        if shipped is not None:
            return shipped[0], shipped[1], {}
        import sklearn.datasets  # a second to import: only when the shipped file is not as expected

        x, y = entry.load(sklearn.datasets)
        return np.asarray(x), np.asarray(y), {}
    path = Path(data.path or data.name)
    if data.source == "csv":
        if data.target is None:
            raise DataError(f"a CSV source needs `target=` naming the label column of `{path.name}`")
        x, y = _read_csv(path, data.target, need_target=True)
        return x, y, {}
    arrays = _read_npz(path, required=("x", "y"))
    given = {part: (arrays[f"x_{part}"], arrays[f"y_{part}"]) for part in HELD_OUT if f"x_{part}" in arrays}
    return arrays["x"], arrays["y"], given


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


def read_features(path: Path, *, target: str | None = None,
                  need_target: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y when `target` is given and present) from a .csv or .npz given at predict/eval time.
    For CSV: header row; the target column is dropped when present, and must be there when
    `need_target` (evaluation). For NPZ: arrays `x` and, when present, `y`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, target, need_target=need_target)
    if suffix == ".npz":
        arrays = _read_npz(path, required=("x",))
        return arrays["x"], arrays.get("y")
    raise DataError(f"unsupported data file `{path.name}`: use a `.csv` file with a header row "
                    "or a `.npz` file with arrays `x` and `y`")


def _read_csv(path: Path, target: str | None, *, need_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Features as float64 (n, columns) and the `target` column, each cell checked with its row and column."""
    header, rows, lines = _csv_table(path)
    if target is not None and target not in header:
        if need_target:
            hint = did_you_mean(target, header) or "its columns are " + ", ".join(f"`{c}`" for c in header)
            raise DataError(f"`{path.name}` has no column `{target}`: {hint}")
        target = None
    features = [i for i, column in enumerate(header) if column != target]
    if not features:
        raise DataError(f"`{path.name}` has only the target column `{target}`: there are no features")
    x = np.empty((len(rows), len(features)))
    for r, (row, line) in enumerate(zip(rows, lines, strict=True)):
        x[r] = [_number(row[i], f"`{path.name}` row {line}, column `{header[i]}`") for i in features]
    if target is None:
        return x, None
    i = header.index(target)
    return x, _target_column([row[i] for row in rows], [f"`{path.name}` row {line}, column `{target}`"
                                                         for line in lines])


def _csv_table(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the rows with as many cells as the header, and each row's 1-based file line."""
    _require_file(path)
    rows, lines = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [cell.strip() for cell in next(reader, [])]
            for row in reader:
                if row:  # a blank line holds no example
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DataError(f"`{path.name}` is not UTF-8 text") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"cannot read `{path.name}`: {e}") from None
    if not any(header):
        raise DataError(f"`{path.name}` is empty: a CSV source needs a header row naming its columns")
    for i, column in enumerate(header):
        if not column:
            raise DataError(f"`{path.name}` row 1, column {i + 1} has no name")
        if column in header[:i]:
            raise DataError(f"`{path.name}` row 1 names the column `{column}` twice")
    if not rows:
        raise DataError(f"`{path.name}` has a header but no rows")
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise DataError(f"`{path.name}` row {line} has {len(row)} cells, the header has {len(header)}")
    return header, rows, lines


def _parse(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _number(cell: str, where: str) -> float:
    """One CSV cell as a finite float, or a DataError saying `where` it is and what is wrong."""
    value = _parse(cell)
    if value is not None and math.isfinite(value):
        return value
    if value is not None:
        problem = f"`{cell}` is not a finite number"
    else:
        problem = f"`{cell}` is not a number" if cell.strip() else "the cell is empty"
    raise DataError(f"{where}: {problem}")


def _target_column(cells: list[str], places: list[str]) -> np.ndarray:
    """Numbers when every cell is one (integers when all are whole), else the text: class names."""
    if all(_parse(cell) is not None for cell in cells):
        values = np.array([_number(cell, where) for cell, where in zip(cells, places, strict=True)])
        return values.astype(np.int64) if np.array_equal(values, np.round(values)) else values
    for cell, where in zip(cells, places, strict=True):
        if not cell.strip():
            raise DataError(f"{where}: the cell is empty")
    return np.array([cell.strip() for cell in cells])


def _read_npz(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays x, y, x_val, y_val, x_test, y_test that are present, loaded without unpickling."""
    _require_file(path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"`{path.name}` is not an NPZ archive: write it with `numpy.savez(path, x=..., y=...)`")
    names = ("x", "y", *(f"{a}_{part}" for part in HELD_OUT for a in "xy"))
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
    for name, array in arrays.items():
        if array.ndim == 0:
            raise DataError(f"array `{name}` in `{path.name}` is a single value, not examples")
        if name.startswith("x") and array.ndim == 1:
            arrays[name] = array.reshape(-1, 1)  # one feature per example, as `dlc check` reads it
    for suffix in ("", *(f"_{part}" for part in HELD_OUT)):
        x, y = arrays.get("x" + suffix), arrays.get("y" + suffix)
        if suffix and (x is None) != (y is None):
            raise DataError(f"`{path.name}` has `{'x' if y is None else 'y'}{suffix}` without "
                            f"`{'y' if y is None else 'x'}{suffix}`")
        if x is not None and y is not None and len(x) != len(y):
            raise DataError(f"`{path.name}`: `x{suffix}` has {len(x)} examples but `y{suffix}` has {len(y)}")
    return arrays


def _require_file(path: Path) -> None:
    """A DataError unless `path` is a file: missing, or a folder, a device or a pipe (never read)."""
    if not path.is_file():
        raise DataError(f"data file `{path}` " + ("is not a file" if path.exists() else "not found"))


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
            given: dict | None = None, labels: list | None = None, source: str = "the data") -> Prepared:
    """Split (seeded; for classification each held-out part takes every class in proportion; `test`
    and `val` are fractions of the whole), encode labels, fit normalization on train only and apply
    it to every split, reshape x to `input_shape` (same element count, checked first).

    `task` is "categorical", "binary" or "regression" (from the loss); `labels` is a saved mapping to
    encode with (for evaluation); `given` holds splits the data brought itself, {"val": (x, y), ...};
    `source` names the data in messages, e.g. "`houses.csv`". shuffle=False splits by position:
    train first, then val, then test at the end.
    """
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
    normalization = _fit_normalization(xs["train"].reshape(len(xs["train"]), -1), normalize)
    shape = tuple(input_shape or example)

    def ready(part: str) -> Split | None:
        if part not in xs:
            return None
        part_x = _normalized(xs[part].reshape(len(xs[part]), -1), normalization)
        return Split(part_x.reshape(len(part_x), *shape).astype(np.float32, copy=False), encoded[part])

    return Prepared(ready("train"), ready("val"), ready("test"), normalization, labels)


def apply_normalization(x: np.ndarray, normalization: dict, input_shape) -> np.ndarray:
    """For evaluation/prediction on new data: flatten per example, (x - shift) / scale, reshape."""
    x = _examples(x, "x", "the data")
    flat = x.reshape(len(x), -1)
    _check_input_shape(x.shape[1:], input_shape, "the data")
    if normalization["kind"] != "none" and flat.shape[1] != len(normalization["shift"]):
        raise DataError(f"examples in the data have {flat.shape[1]} values but the model was trained on "
                        f"{len(normalization['shift'])}")
    shape = tuple(input_shape or x.shape[1:])
    return _normalized(flat, normalization).reshape(len(x), *shape).astype(np.float32)


def _examples(x, name: str, source: str) -> np.ndarray:
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


def _targets(y, n: int, name: str, source: str) -> np.ndarray:
    """y as an array with one entry per example; text from a Python object array becomes str."""
    y = np.asarray(y)
    if y.dtype.kind == "O":  # e.g. a pandas column of class names
        y = np.array(y.tolist())
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"`x{name[1:]}` in {source} has {n} examples but `{name}` has "
                        f"{len(y) if y.ndim else 'a single value'}")
    return y


def _require_finite(values: np.ndarray, name: str, source: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        count = int(bad.sum())
        first = np.unravel_index(np.argmax(bad), values.shape)
        raise DataError(f"`{name}` in {source} has {count} NaN or infinite value{'s' * (count != 1)}, "
                        f"the first at {_at(name, first)}")


def _check_input_shape(example: tuple[int, ...], input_shape, source: str) -> None:
    if input_shape is not None and math.prod(example) != math.prod(input_shape):
        raise DataError(f"examples in {source} have shape {_shape(example)} ({math.prod(example)} values) "
                        f"but `input {_shape(input_shape)}` needs {math.prod(input_shape)}")


def _at(name: str, index: tuple) -> str:
    """An element's place as NumPy indexing writes it, e.g. `x[17, 3]`."""
    return f"`{name}[{', '.join(str(int(i)) for i in index)}]`"


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _holds(dtype: np.dtype) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects"}.get(dtype.kind, f"`{dtype}` values")


# --- labels -----------------------------------------------------------------------------------


def _class_labels(y: np.ndarray, name: str, source: str) -> np.ndarray:
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
            raise DataError(f"{_at(name, (i,))} in {source} is {y[i]:g}, not a class label: a classification "
                            "loss needs integers or names")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuU":
        raise DataError(f"`{name}` in {source} holds {_holds(y.dtype)}, not class labels")
    return y


def _index(ys: dict[str, np.ndarray], labels: list, source: str) -> dict[str, np.ndarray]:
    """Each label replaced by its position in `labels`; a label not there is a DataError."""
    position = {label: i for i, label in enumerate(labels)}
    out = {}
    for part, y in ys.items():
        found, inverse = np.unique(y, return_inverse=True)
        for label in found.tolist():
            if label not in position:
                raise DataError(f"{source} has the label `{label}`, which is not one of the model's "
                                f"{len(labels)} classes")
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
        out[part] = y.astype(np.float32)
    width = out["all"].shape[1]
    for part, y in out.items():
        if y.shape[1] != width:
            raise DataError(f"`{_y_name(part)}` in {source} has {y.shape[1]} targets per example but `y` has {width}")
    if output_units is not None and width != output_units:
        raise DataError(f"targets in {source} have {width} value{'s' * (width != 1)} per example "
                        f"but the output has {output_units} unit{'s' * (output_units != 1)}")
    return out, None


def _numbers(y: np.ndarray, name: str, source: str) -> np.ndarray:
    """y as float64; text is read number by number, so that the first that is not one is named."""
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    values = np.empty(y.shape)
    for index in np.ndindex(y.shape):
        try:
            values[index] = float(y[index])
        except (TypeError, ValueError):
            raise DataError(f"{_at(name, index)} in {source} is `{y[index]}`, not a number: "
                            "a regression loss needs numeric targets") from None
    return values


def _y_name(part: str) -> str:
    return "y" if part == "all" else f"y_{part}"


# Each task's encoder: (targets per part, saved labels, output units, source) -> (encoded per part, labels).
ENCODERS = {"categorical": _categorical, "binary": _binary, "regression": _regression}


# --- splitting and normalization --------------------------------------------------------------


def _split_indices(n: int, val: float, test: float, *, shuffle: bool, seed: int, strata: np.ndarray | None,
                   source: str) -> dict[str, np.ndarray]:
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


def _fit_normalization(flat: np.ndarray, kind: str) -> dict:
    """Per-feature shift and scale from the training part; a constant feature is only shifted."""
    if kind == "none":
        return {"kind": "none", "shift": [], "scale": []}
    shift, scale = NORMALIZERS[kind](flat)
    scale = np.where(np.ptp(flat, 0) == 0, 1.0, scale)
    return {"kind": kind, "shift": shift.tolist(), "scale": scale.tolist()}


def _normalized(flat: np.ndarray, normalization: dict) -> np.ndarray:
    if normalization["kind"] == "none":
        return flat
    dtype = flat.dtype if flat.dtype == np.float32 else np.float64
    return (flat - np.asarray(normalization["shift"], dtype)) / np.asarray(normalization["scale"], dtype)
