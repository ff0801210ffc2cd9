"""Reading data: a built-in dataset, a CSV or an NPZ file, as raw arrays, and the `Source` that
messages name it by. `data` prepares what is read here for training. A CSV file's cells are read
by `csvread`; here it is decided which of its columns are read and what messages call it.

Every problem with the data is one `DataError` (declared in `dataerror`, imported from here) whose
one-line message names the file and, where it applies, the row and column: whoever wrote the data
fixes it without reading a traceback.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc.compiler import ir
from dlc.compiler.datafacts import listing
from dlc.compiler.registry import lookup
from dlc.compiler.suggest import did_you_mean
from dlc.runtime import csvread
from dlc.runtime.dataerror import DataError
from dlc.runtime.table import Table, table_of

HELD_OUT = ("val", "test")


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
            return f"{self.name} row {csvread.line_of(self.path, int(index[0]))}, column `{column}`"
        return f"{element_at(name, index)} in {self.name}"


def element_at(name: str, index: tuple) -> str:
    """An element's place as NumPy indexing writes it, e.g. `x[17, 3]`."""
    return f"`{name}[{', '.join(str(int(i)) for i in index)}]`"


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
        shipped = read_shipped(entry)
        if shipped is not None:
            return shipped[0], shipped[1], {}, source
        import sklearn.datasets  # a second to import: only when the shipped file is not as expected

        x, y = entry.load(sklearn.datasets)
        return np.asarray(x), np.asarray(y), {}, source
    path = Path(data.path or data.name)
    if data.source == "csv":
        if data.target is None:
            raise DataError(f"a CSV source needs `target=` naming the label column of `{path.name}`")
        text = (data.text,) if data.text is not None else ()
        # Means are fitted whatever is missing in the training file: evaluation may find cells missing.
        x, y, source = _read_csv(path, data.target, with_target=True, columns=columns or text,
                                 as_table=bool(text) or data.missing == "mean")
        return x, y, {}, source
    arrays = _read_npz(path, required=("x", "y"), held_out=True)
    given = {part: (arrays[f"x_{part}"], arrays[f"y_{part}"]) for part in HELD_OUT if f"x_{part}" in arrays}
    return arrays["x"], arrays["y"], given, Source(f"`{path.name}`")


def read_shipped(entry) -> tuple[np.ndarray, np.ndarray] | None:
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


def read_table(path: Path, columns: tuple[str, ...], target: str | None = None
               ) -> tuple[Table, np.ndarray | None, Source]:
    """(features as a Table of their cells as text, the `target` column if given, source) of a CSV file
    (see `read_features`), for columns that are categories or text whatever they look like."""
    return _read_csv(Path(path), target, with_target=target is not None, columns=columns, as_table=True)


def _read_csv(path: Path, target: str | None, *, with_target: bool, columns: tuple[str, ...] = (),
              as_table: bool = False) -> tuple[np.ndarray | Table, np.ndarray | None, Source]:
    """Features as float32 (examples, features) and, `with_target`, the `target` column, from a CSV
    file with a header row (which columns: see `read_features`). NumPy's C parser reads the file;
    should it refuse it, read a feature that is no finite float32 or a target cell that is missing,
    the file is read again cell by cell (which also reads what only Python takes for a number, such
    as `1_000`): features that are all finite float32 numbers are returned as such, others (a missing
    cell, text) as a `Table` of the cells for `encoding` to make features of, naming the row and
    column of a bad one. `as_table`: a Table whatever the cells (a column of text)."""
    _require_file(path)
    header = csvread.column_names(path)
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
    cells = csvread.Cells() if with_target else None
    read = None if as_table else csvread.by_numpy(path, len(header), wanted, target_at, cells)
    if read is None:
        cells = csvread.Cells() if with_target else None  # the fast pass may have stopped half-way
        read = csvread.by_cell(path, header, wanted, target_at, cells, as_table)
    x, codes = read
    y, label_missing = (None, None) if cells is None else csvread.target_column(cells, codes, source)
    if isinstance(x, list):
        x = table_of(tuple(features), x, [False] * len(x[0]) if label_missing is None else label_missing.tolist())
    return x, y, source


def _require_room_for_csv(path: Path, width: int) -> None:
    """Refuse a CSV file whose table would not fit in memory as float32, before reading it (a
    machine that runs out is more likely to kill the process than to report it): the number of
    rows is estimated from the file's size and the length of its first lines."""
    memory = machine_memory()
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


def machine_memory() -> int | None:
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
    memory = machine_memory()
    if memory is not None and size > memory:
        from dlc.runtime.memory import _human

        raise DataError(f"`{path.name}` unpacks to {_human(size)}, more than this machine's {_human(memory)} of memory")
