"""What the checker reads from a CSV's cells (`dlc/compiler/csvfacts.py`): categorical columns and
their training widths, left unknown where only the runtime can tell, and at no cost in NumPy for a
file of numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlc.compiler import csvfacts
from dlc.compiler.check import check_text

SPEC = 'data "d.csv" target="y"{options}\ndense 2 softmax\nloss categorical_crossentropy\noptimizer sgd\n'


def checked(tmp_path: Path, csv: str, options: str = ""):
    (tmp_path / "d.csv").write_text(csv, encoding="utf-8")
    program, diagnostics = check_text(SPEC.format(options=options), "s.dl", tmp_path)
    assert program is not None, diagnostics
    return program


def test_text_cells_make_a_column_categorical_and_count_its_categories(tmp_path):
    program = checked(tmp_path, "a,c,y\n1,red,x\n2, blue,y\n3,red ,x\n4,?,y\n", " missing=mean")
    assert program.data.categorical == (("c", 2),) and program.input_shape == (3,)
    assert program.layers[0].params == 3 * 2 + 2


def test_text_only_in_held_out_rows_leaves_the_column_numeric(tmp_path):
    # With shuffle=false the last row is the validation split: its `oops` is no training value.
    program = checked(tmp_path, "a,y\n1,x\n2,y\n3,x\noops,y\n", " val=0.25 shuffle=false")
    assert program.data.categorical == () and program.input_shape == (1,)


def test_missing_drop_drops_rows_before_the_split(tmp_path):
    csv = "a,c,y\n1,red,x\n2,blue,y\n,green,x\n4,blue,x\n"
    assert checked(tmp_path, csv, " missing=drop").data.categorical == (("c", 2),)
    assert checked(tmp_path, csv, " missing=mean").data.categorical == (("c", 3),)


def test_widths_are_unknown_past_the_scan_limit_or_where_the_runtime_refuses(tmp_path, monkeypatch):
    assert checked(tmp_path, "a,c,y\n1,red,x\n2,blue,NA\n", " missing=mean").input_shape is None  # a missing label
    monkeypatch.setattr(csvfacts, "MAX_SCAN_BYTES", 8)
    csvfacts._categorical.cache_clear()
    assert checked(tmp_path, "a,c,y\n1,red,x\n2,blue,y\n3,red,y\n").input_shape is None
    assert checked(tmp_path, "a,b,y\n1,2,x\n2,3,y\n3,4,y\n").input_shape == (2,)  # numbers: as the header says


@pytest.mark.parametrize(("csv", "numpy"), [("a,b,y\n1,2,x\n3,4,y\n", False), ("a,c,y\n1,r,x\n2,b,y\n3,r,x\n", True)],
                         ids=["numbers", "categories held out in part"])
def test_numpy_is_imported_only_to_split_a_file_with_categories(tmp_path, csv, numpy):
    (tmp_path / "d.csv").write_text(csv, encoding="utf-8")
    code = ("import sys; from dlc.compiler.check import check_text; "
            f"p, _ = check_text({SPEC.format(options=' val=0.3')!r}, 's.dl', __import__('pathlib').Path({str(tmp_path)!r})); "
            "assert p is not None; print('numpy' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == str(numpy)
