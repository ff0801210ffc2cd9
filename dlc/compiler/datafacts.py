"""What a data file says about itself, read cheaply and without NumPy: a CSV's header line,
an NPZ's member names and `.npy` headers. Nothing is unpickled or loaded."""

from __future__ import annotations

import ast
import csv
import io
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from dlc.compiler import messages as m
from dlc.compiler.diagnostics import Diagnostic, printable
from dlc.grammar.nodes import Span


class DataFactError(Exception):
    """A data file that cannot serve as the spec says: its message and values, to be reported at the
    `data` statement once its place there is known. `at` is that place: the `source`, the `target`
    value, the `target option`'s name, or the whole `statement`."""

    def __init__(self, message: m.Message, at: str = "source", hint: str | None = None, **values: object):
        super().__init__(message.code)
        self.message, self.at, self.hint, self.values = message, at, hint, values

    def diagnostic(self, span: Span) -> Diagnostic:
        return self.message.at(span, hint=self.hint, **self.values)


@dataclass(frozen=True)
class FileFacts:
    features: tuple[int, ...] | None
    integer_labels: bool | None  # None when unknown (a CSV's column types are not read at check time)
    target_width: int | None
    has_val: bool
    has_test: bool
    columns: tuple[str, ...] = ()
    # The first of an NPZ's `x`, `x_val`, `x_test` that holds floats, and their dtype (`("x", "float32")`):
    # numbers, never token ids, so no `embedding` takes them (E407). None when every `x` holds integers.
    float_x: tuple[str, str] | None = None


NOT_FOUND = "not found"
# File systems the kernel makes up: their files read as what the system holds (`/proc/self/environ` is
# the environment, secrets and all), yet stat as regular files of size 0.
_KERNEL_FILE_SYSTEMS = ("/proc", "/sys")


def data_file_problem(path: Path) -> str | None:
    """Why `path` cannot be a data file, as words that follow "data file `PATH`", or None when it can.

    Only a regular file on a real file system is read, wherever its symbolic links lead: a spec from a
    cloned repository or a pull request names the data, and must not make dlc read a device or a pipe
    (which may never end) or a kernel file, and print what it holds in a hint."""
    try:
        real = os.path.realpath(path)
        status = os.stat(real)
    except (OSError, ValueError):  # missing, a loop of links, a name the file system refuses
        return NOT_FOUND
    if stat.S_ISDIR(status.st_mode):
        return "is not a file: it is a folder"
    if not stat.S_ISREG(status.st_mode):
        return "is not a file: it is a device, a pipe or a socket"
    if any(real.startswith(f"{root}/") or status.st_dev == _mounted_device(root) for root in _KERNEL_FILE_SYSTEMS):
        return "is not a data file: it is made up by the kernel (under /proc or /sys)"
    return None


def _mounted_device(root: str) -> int | None:
    """The device of the file system mounted at `root` (so that it is known however a link or a second
    mount reaches it), or None where nothing is mounted there."""
    try:
        device = os.stat(root).st_dev
        return None if device == os.stat("/").st_dev else device
    except OSError:  # no such folder here (macOS has no /proc)
        return None


# Names from a data file that a hint lists: a few, each shortened, never the raw bytes of the file.
LISTED_NAMES = 20
LISTED_NAME_WIDTH = 60


def listing(names: list[str] | tuple[str, ...]) -> str:
    """`a`, `b`, ... for a hint: at most LISTED_NAMES names, each printable and shortened, then how
    many more there are."""
    shown = ", ".join(f"`{printable(name, LISTED_NAME_WIDTH)}`" for name in names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more:,} more" if more > 0 else shown


# A header line is read up to this length: a file of one endless line is refused, not read whole.
MAX_HEADER_CHARS = 2**20


def csv_facts(path: Path, target: str | None, text: str | None = None) -> FileFacts:
    """The header's facts: every column but the target a feature; `text`, when given, must be
    another column of the header."""
    if target is None:
        raise DataFactError(m.NO_TARGET, at="statement")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not part of a name
            head = f.read(MAX_HEADER_CHARS)
        if len(head) == MAX_HEADER_CHARS and "\n" not in head:
            raise DataFactError(m.HEADER_TOO_LONG, file=path.name, limit=MAX_HEADER_CHARS)
        header = next(csv.reader(io.StringIO(head)), None)
    except UnicodeDecodeError:
        raise DataFactError(m.CSV_NOT_UTF8, file=path.name) from None
    except (OSError, csv.Error) as e:
        raise DataFactError(m.CANNOT_READ, file=path.name, reason=e) from None
    if not header or not any(c.strip() for c in header):
        raise DataFactError(m.EMPTY_CSV, file=path.name)
    columns = tuple(c.strip() for c in header)
    if target not in columns:
        from dlc.compiler.suggest import did_you_mean

        raise DataFactError(m.NO_SUCH_COLUMN, at="target", hint=did_you_mean(target, columns), file=path.name,
                            target=target, columns=listing(columns))
    if len(columns) < 2:
        raise DataFactError(m.NO_FEATURES, file=path.name)
    if text is not None and text not in columns:
        from dlc.compiler.suggest import did_you_mean

        raise DataFactError(m.NO_SUCH_COLUMN, at="text", hint=did_you_mean(text, columns), file=path.name,
                            target=text, columns=listing(columns))
    if text == target:
        raise DataFactError(m.TEXT_IS_TARGET, at="text", text=text)
    return FileFacts((len(columns) - 1,), None, 1, False, False, columns)


def _npy_header(data: bytes, member: str) -> tuple[str, tuple[int, ...]]:
    """(dtype, shape) from the header of a `.npy` member, as NumPy's format documents it: the dtype
    as its kind and size, `f4`, its first letter the kind."""
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"`{member}` is not a .npy array")
    malformed = ValueError(f"`{member}` has a malformed header")
    try:
        if data[6] == 1:
            (length,), start = struct.unpack("<H", data[8:10]), 10
        else:
            (length,), start = struct.unpack("<I", data[8:12]), 12
        # A literal, never code: `literal_eval` builds Python values and calls nothing.
        header = ast.literal_eval(data[start:start + length].decode("latin1"))
    except (IndexError, struct.error, ValueError, SyntaxError, MemoryError, RecursionError):
        raise malformed from None
    if not isinstance(header, dict) or not {"descr", "shape"} <= header.keys():
        raise malformed
    descr, shape = header["descr"], header["shape"]
    if isinstance(descr, list):
        raise ValueError(f"`{member}` holds structured data")
    if not isinstance(descr, str) or not descr or not isinstance(shape, tuple) \
            or not all(type(d) is int and d >= 0 for d in shape):
        raise malformed
    return descr.lstrip("<>|="), shape


# NumPy's names of the float dtypes a `.npy` header writes as kind and size in bytes (the last two are
# `longdouble` on x86): what a message calls them. A header is the file's word, so any other is "float".
FLOAT_NAMES = {"f2": "float16", "f4": "float32", "f8": "float64", "f12": "float96", "f16": "float128"}


def npz_facts(path: Path) -> FileFacts:
    try:
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
            arrays: dict[str, tuple[str, tuple[int, ...]]] = {}
            for name in ("x", "y", "x_val", "y_val", "x_test", "y_test"):
                if f"{name}.npy" in members:
                    with z.open(f"{name}.npy") as f:
                        arrays[name] = _npy_header(f.read(4096), f"{name}.npy")
    # An unknown compression method raises NotImplementedError, an encrypted member RuntimeError.
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, NotImplementedError, RuntimeError) as e:
        raise DataFactError(m.NOT_AN_NPZ, file=path.name, reason=e) from None
    for name in ("x", "y"):
        if name not in arrays:
            held = listing([member.removesuffix(".npy") for member in sorted(members)]) or m.NO_ARRAYS
            raise DataFactError(m.NO_ARRAY, file=path.name, name=name, held=held)
    for name, (dtype, shape) in arrays.items():
        kind = dtype[:1]
        if kind not in "biuf":
            what = m.DTYPE_KINDS.get(kind) or m.OTHER_DTYPE_KIND.format(kind=kind)
            raise DataFactError(m.NOT_NUMBERS, hint=m.OBJECTS_NEVER_LOADED if kind == "O" else None, file=path.name,
                                name=name, what=what)
        if not shape:
            raise DataFactError(m.SCALAR_ARRAY, file=path.name, name=name)
    for split in ("", "_val", "_test"):
        x, y = arrays.get("x" + split), arrays.get("y" + split)
        if (x is None) != (y is None):
            have, lack = ("x", "y") if x else ("y", "x")
            raise DataFactError(m.UNPAIRED_ARRAY, file=path.name, have=have, lack=lack, split=split)
        if x and y and x[1][0] != y[1][0]:
            raise DataFactError(m.EXAMPLES_DISAGREE, file=path.name, split=split, x=x[1][0], y=y[1][0])
    y_dtype, y_shape = arrays["y"]
    y_kind = y_dtype[:1]
    # One float per example may hold whole numbers, which are class labels too: known once loaded.
    integer_labels = None if y_kind == "f" and len(y_shape) == 1 else y_kind in "biu" and len(y_shape) == 1
    floats = [(name, FLOAT_NAMES.get(arrays[name][0], "float")) for name in ("x", "x_val", "x_test")
              if name in arrays and arrays[name][0][:1] == "f"]
    return FileFacts(arrays["x"][1][1:] or (1,), integer_labels,
                     1 if len(y_shape) == 1 else y_shape[1] if len(y_shape) == 2 else None,
                     "x_val" in arrays, "x_test" in arrays, float_x=floats[0] if floats else None)

