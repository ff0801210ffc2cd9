"""Hostile data files through `dlc check` (which reads only a CSV's header and an NPZ's array
headers) and `dlc run` (which reads everything): NaN, empty, ragged and huge CSVs, byte-order marks
and terminal escapes in cells; NPZ archives that are truncated, text, pickles, hold pickled objects
or lie in their headers. Each gets a diagnostic or one `dlc: error:` line and exit 1, never a
traceback, and nothing in them is ever unpickled."""

from __future__ import annotations

import io
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_diagnosed, assert_refused, dlc

from dlc.cli import EXIT_OK
from dlc.runtime.sources import read_features

TRAIN = "\ndense 1\nloss mse\noptimizer sgd lr=0.01\nepochs 1\n"


def data_spec(folder: Path, name: str, content: bytes | str | None) -> Path:
    """`folder/name` holding `content` (a folder when None) and a spec that trains on it."""
    path = folder / name
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    target = ' target="t"' if name.endswith(".csv") else ""
    spec = folder / "spec.dl"
    spec.write_text(f'data "{name}"{target}{TRAIN}', encoding="utf-8")
    return spec


def run(spec: Path) -> object:
    return dlc("run", str(spec), "-q", "--out", str(spec.parent / "run"))


# --- CSV --------------------------------------------------------------------------------------

# (content, what `dlc run` says); `dlc check` finds these fine (text in a feature column makes it
# categorical, so text goes in the target here)
BAD_ROWS = {
    "nan": ("a,t\n1,2\nnan,3\n", "row 3, column `a`: the cell is missing (`nan`)"),
    "infinite": ("a,t\n1e999,2\n", "row 2, column `a`: `1e999` is not a finite number"),
    "beyond float32": ("a,t\n1e39,2\n", "row 2, column `a`: `1e39` is beyond float32's range (±3.4e38)"),
    "ragged": ("a,t\n1,2\n1\n", "row 3 has 1 cells, the header has 2"),
    "header only": ("a,t\n", "has a header but no rows"),
    "not a number": ("a,t\n1,2\n3,foo\n", "row 3, column `t` is `foo`, not a number"),
    "empty cell": ("a,t\n,2\n", "row 2, column `a`: the cell is missing; set `missing=mean`"),
    "unclosed quote": ('a,t\n"1,2\n3,4\n', "has 1 cells, the header has 2"),
    "line break in a quoted cell": ('a,t\n"1\n\n2",3\n4,NA\n', "row 5, column `t`: the cell is missing"),
    "terminal escape in a cell": ("a,t\n1,\x1b[2J\x1b[31mred\n", "not a number"),
    "huge cell": ("a,t\n" + "1" * 200_000 + ",2\n", "cannot read `d.csv`"),
    "huge quoted cell": ('a,t\n"' + "x" * 200_000 + '",2\n', "cannot read `d.csv`"),
}


@pytest.mark.parametrize(("content", "message"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_csv_rows_pass_check_and_stop_run_with_one_line(tmp_path, content, message):
    spec = data_spec(tmp_path, "d.csv", content)
    assert dlc("check", str(spec)).status == EXIT_OK
    assert_refused(run(spec), message)


# (content, code `dlc check` gives; `dlc run` checks first and gives the same)
BAD_CSV_FILES = {
    "empty": ("", "E606"),
    "binary": (bytes(range(256)) * 8, "E606"),
    "latin-1": ("é,t\n1,2\n".encode("latin-1"), "E606"),
    "no such column": ("a,b\n1,2\n", "E602"),
    "only the target": ("t\n1\n", "E606"),
    "a folder": (None, "E606"),
}


@pytest.mark.parametrize(("content", "code"), BAD_CSV_FILES.values(), ids=BAD_CSV_FILES.keys())
def test_unreadable_csv_files_are_diagnosed_by_check_and_run(tmp_path, content, code):
    spec = data_spec(tmp_path, "d.csv", content)
    assert_diagnosed(dlc("check", str(spec)), code)
    assert_diagnosed(run(spec), code)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    """Spreadsheet programs save UTF-8 CSVs with a BOM; the first column keeps its name."""
    spec = data_spec(tmp_path, "d.csv", "\ufefft,a\n1,2\n3,4\n")
    assert dlc("check", str(spec)).status == EXIT_OK
    x, y, _ = read_features(tmp_path / "d.csv", target="t", with_target=True)
    assert x.tolist() == [[2], [4]] and y.tolist() == [1, 3]


def test_a_standard_deviation_that_overflows_stops_run_naming_the_feature(tmp_path):
    """Inputs of 1e300 made the standard deviation infinite: every input became 0, training ran at chance."""
    x = np.column_stack([np.linspace(0, 1, 8), np.linspace(-1e300, 1e300, 8)])
    spec = data_spec(tmp_path, "d.npz", archive(x=npy(x), y=npy(np.linspace(0, 1, 8))))
    spec.write_text(spec.read_text(encoding="utf-8").replace('"d.npz"', '"d.npz" normalize=standard'), encoding="utf-8")
    assert_refused(run(spec), "feature 1 of `d.npz` cannot be normalized: its standard deviation overflows")


# --- NPZ --------------------------------------------------------------------------------------


class Trap:
    """Unpickling this creates the file `path`: proof that something unpickled data."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(header: bytes) -> bytes:
    """A `.npy` member whose header is `header`, in format 1.0."""
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def archive(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def objects(trap: Path) -> np.ndarray:
    held = np.empty(2, dtype=object)
    held[:] = [Trap(trap), Trap(trap)]
    return held


def truncated() -> bytes:
    data = archive(x=npy(np.ones((100, 3))), y=npy(np.ones(100)))
    return data[: len(data) // 2]


def compressed_with_unknown_method() -> bytes:
    """A well-formed archive whose members claim compression method 99 (none that zipfile knows)."""
    data = bytearray(archive(x=npy(np.ones((3, 2))), y=npy(np.ones(3))))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset:at + offset + 2] = struct.pack("<H", 99)
            at = data.find(signature, at + 4)
    return bytes(data)


def corrupt_deflate() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.random.default_rng(0).random((100, 3)), y=np.ones(100))
    data = bytearray(buffer.getvalue())
    start = 30 + struct.unpack("<H", data[26:28])[0] + struct.unpack("<H", data[28:30])[0]
    data[start:start + 40] = bytes(b ^ 0x5A for b in data[start:start + 40])
    return bytes(data)


GOOD_Y = npy(np.ones(3))
HEADER = "{'descr': '<f8', 'fortran_order': False, 'shape': %s}"
# (the file's bytes, given the path a trap would create; the code `dlc check` gives)
BAD_NPZ = {
    "object array": (lambda trap: archive(x=npy(objects(trap)), y=npy(np.ones(2))), "E604"),
    "pickle renamed .npz": (lambda trap: pickle.dumps({"x": Trap(trap), "y": [1]}), "E606"),
    "pickle as a member": (lambda trap: archive(x=pickle.dumps(Trap(trap)), y=GOOD_Y), "E606"),
    "text": (lambda trap: b"x,y\n1,2\n", "E606"),
    "empty": (lambda trap: b"", "E606"),
    "truncated": (lambda trap: truncated(), "E606"),
    "unknown compression": (lambda trap: compressed_with_unknown_method(), "E606"),
    "corrupt compressed data": (lambda trap: corrupt_deflate(), "E606"),
    "header is a list": (lambda trap: archive(x=npy_header(b"[1, 2]"), y=GOOD_Y), "E606"),
    "header is a call": (lambda trap: archive(x=npy_header(b"__import__('os').system('true')"), y=GOOD_Y), "E606"),
    "shape of None": (lambda trap: archive(x=npy_header((HEADER % "(None, 2)").encode()), y=GOOD_Y), "E606"),
    "negative shape": (lambda trap: archive(x=npy_header((HEADER % "(-3, 2)").encode()), y=GOOD_Y), "E606"),
    "nested header": (lambda trap: archive(x=npy_header(b"(" * 150 + b")" * 150), y=GOOD_Y), "E606"),
    "header runs past the member": (lambda trap: archive(x=b"\x93NUMPY\x02\x00\xff\xff\xff\xff{", y=GOOD_Y), "E606"),
    "strings": (lambda trap: archive(x=npy(np.array([["a"], ["b"], ["c"]])), y=GOOD_Y), "E604"),
    "no arrays": (lambda trap: archive(), "E604"),
    "a folder": (None, "E606"),
}


@pytest.mark.parametrize(("content", "code"), BAD_NPZ.values(), ids=BAD_NPZ.keys())
def test_bad_npz_files_are_diagnosed_and_never_unpickled(tmp_path, content, code):
    trap = tmp_path / "unpickled"
    spec = data_spec(tmp_path, "d.npz", None if content is None else content(trap))
    assert_diagnosed(dlc("check", str(spec)), code)
    assert_diagnosed(run(spec), code)
    assert not trap.exists()


def huge_header() -> bytes:
    """Arrays whose headers declare a trillion examples, in an archive of a few hundred bytes."""
    return archive(x=npy_header((HEADER % ((10**12, 3),)).encode()), y=npy_header((HEADER % ((10**12,),)).encode()))


# (the file's bytes; what `dlc run` says: `dlc check` reads array headers only and finds these fine)
BAD_ARRAYS = {
    "nan": (lambda: archive(x=npy(np.array([[1.0], [np.nan], [2.0]])), y=GOOD_Y), "has 1 NaN or infinite value"),
    "no examples": (lambda: archive(x=npy(np.ones((0, 3))), y=npy(np.ones(0))), "has no examples"),
    "a trillion examples declared": (huge_header, "declares arrays larger than this machine's memory"),
    "data shorter than its header": (lambda: archive(x=npy(np.ones((3, 2)))[:-8], y=GOOD_Y), "cannot read"),
}


@pytest.mark.parametrize(("content", "message"), BAD_ARRAYS.values(), ids=BAD_ARRAYS.keys())
def test_bad_arrays_pass_check_and_stop_run_with_one_line(tmp_path, content, message):
    spec = data_spec(tmp_path, "d.npz", content())
    assert dlc("check", str(spec)).status == EXIT_OK
    assert_refused(run(spec), message)


def test_an_archive_larger_than_memory_is_refused_before_unpacking(tmp_path, monkeypatch):
    """A zip bomb unpacks to more than the machine holds: its directory says so before any byte is
    unpacked. (The machine's memory is made small here, so the bomb can be small too.)"""
    spec = data_spec(tmp_path, "d.npz", archive(x=npy(np.zeros((1000, 8))), y=npy(np.zeros(1000))))
    monkeypatch.setattr("dlc.runtime.sources.machine_memory", lambda: 16 * 1024)
    answer = run(spec)
    assert_refused(answer, "more than this machine's 16.0 KiB of memory")
    assert re.search(r"`d\.npz` unpacks to \d+\.\d KiB", answer.err)
