"""Categorical columns and missing cells of a CSV source (LANGUAGE.md v2, Tabular data): the encoder
alone, the checker's widths against what training builds, every `missing=` mode, evaluation and
prediction on files whose columns come in another order, categories training never saw, the
record in preprocessing.json, and the shipped wine dataset."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import dlc
from dlc.compiler.check import check_text
from dlc.runtime import commands
from dlc.runtime.data import DataWarning
from dlc.runtime.encoding import encode, fit
from dlc.runtime.sources import DataError, Source, read_features
from dlc.runtime.storage import RunFolderError
from dlc.runtime.table import drop_missing, table_of

ROOT = Path(__file__).resolve().parents[2]
FLOWERS = """petal,colour,size,label
1.0,red,3,x
2.0,blue,NA,y
1.5,red,4,x
3.0,green,5,y
2.5,blue,,y
0.5,red,2,x
1.2,green,3,x
2.2,blue,6,y
"""
SPEC = """data "flowers.csv" target="label" val=0.25 normalize=standard{options}
dense 4 relu
dense 2 softmax
loss categorical_crossentropy
optimizer adam
epochs 2
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def spec(folder: Path, options: str = " missing=mean", csv: str = FLOWERS) -> Path:
    write(folder, "flowers.csv", csv)
    return write(folder, "flowers.dl", SPEC.format(options=options))


def trained(folder: Path, options: str = " missing=mean", csv: str = FLOWERS) -> Path:
    program = dlc.load(spec(folder, options, csv))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # rows dropped, a category only held-out rows hold
        program.fit()
    return program.save(folder / "run")


# --- the encoder ----------------------------------------------------------------------------


def table(columns: dict[str, list[str]]):
    n = len(next(iter(columns.values())))
    return table_of(tuple(columns), list(columns.values()), [False] * n)


SOURCE = Source("`t.csv`", ("a", "c"))


def test_a_column_with_text_is_one_hot_over_its_sorted_categories_and_numbers_stay_numbers():
    t = table({"a": ["1", "2", " 3"], "c": ["red", "blue", "007"]})
    encoding = fit(t, SOURCE)
    assert [r["kind"] for r in encoding.columns] == ["number", "category"]
    assert encoding.columns[1]["categories"] == ["007", "blue", "red"]  # `007` stays the text written
    assert encoding.width == 4 and encoding.categorical == (("c", 3),)
    x, notes = encode(encoding, t, SOURCE, "error")
    assert x.tolist() == [[1, 0, 0, 1], [2, 0, 1, 0], [3, 1, 0, 0]] and notes == []
    assert encoding.feature_names() == ("a", "c=007", "c=blue", "c=red")


def test_a_category_training_never_saw_is_all_zeros_and_counted():
    encoding = fit(table({"a": ["1", "2"], "c": ["red", "blue"]}), SOURCE)
    x, notes = encode(encoding, table({"a": ["1", "1", "1"], "c": ["green", "red", "green"]}), SOURCE, "error")
    assert x[:, 1:].tolist() == [[0, 0], [0, 1], [0, 0]]
    assert notes == ["column `c` of `t.csv`: 2 rows hold a category the training split lacks (`green`), "
                     "encoded as all zeros"]


def test_missing_mean_fills_the_training_mean_and_the_most_frequent_category():
    train = table({"a": ["1", "NA", "4"], "c": ["blue", "red", "blue"]})
    encoding = fit(train, SOURCE)
    assert encoding.columns[0]["mean"] == 2.5 and encoding.columns[1]["mode"] == "blue"
    x, _ = encode(encoding, table({"a": ["?", "nan"], "c": ["", "null"]}), SOURCE, "mean")
    assert x.tolist() == [[2.5, 1, 0], [2.5, 1, 0]]


def test_a_missing_cell_under_error_names_the_cell_and_the_options(tmp_path):
    t = table({"a": ["1", "N/A"], "c": ["x", "y"]})
    source = Source("`t.csv`", ("a", "c"), write(tmp_path, "t.csv", "a,c\n1,x\n\nN/A,y\n"))
    with pytest.raises(DataError, match=r"`t.csv` row 4, column `a`: the cell is missing \(`N/A`\); "
                                        r"set `missing=mean` .* or `missing=drop`") as caught:
        encode(fit(t, source), t, source, "error")
    assert "\n" not in str(caught.value)


def test_drop_removes_rows_with_a_missing_feature_or_label():
    t = table_of(("a",), [["1", "", "3", "4"]], [False, False, True, False])
    kept, y, dropped = drop_missing(t, np.arange(4))
    assert dropped == 2 and y.tolist() == [0, 3] and kept.examples.tolist() == [0, 3]


# --- checked widths against training --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_checker_counts_the_categories_training_finds(tmp_path, seed):
    """The IR's input width and parameter counts come from the training split's categories, which
    `dlc check` finds without loading the data as the runtime does (a seeded, stratified split)."""
    text = FLOWERS + "".join(f"{i / 10},{c},{i},{'xy'[i % 2]}\n" for i, c in enumerate(["teal", "plum"] * 4))
    program = dlc.load(spec(tmp_path, f" missing=mean\nseed {seed}", text))
    checked = program.ir
    program.fit(epochs=1)
    session = program.trained
    assert session.prepared.encoding.width == checked.input_shape[0]
    assert session.program.params == checked.params
    assert session.prepared.encoding.categorical == checked.data.categorical


def test_the_summary_shows_each_categorical_column(tmp_path):
    from dlc.compiler.summary import summary

    program, diagnostics = check_text(SPEC.format(options=" missing=mean"), "f.dl", spec(tmp_path).parent)
    assert program is not None, diagnostics
    text = summary(program)
    assert "colour: one-hot, 3 categories" in text and "missing cells: mean" in text


def test_one_hot_features_are_not_normalized(tmp_path):
    run = trained(tmp_path)
    pre = json.loads((run / "preprocessing.json").read_text())
    kinds = [r["kind"] for r in pre["encoding"] for _ in (r.get("categories") or [0])]
    assert kinds == ["number", "category", "category", "category", "number"]
    one_hot = [i for i, kind in enumerate(kinds) if kind == "category"]
    assert [pre["normalization"]["shift"][i] for i in one_hot] == [0, 0, 0]
    assert [pre["normalization"]["scale"][i] for i in one_hot] == [1, 1, 1]


# --- missing= ---------------------------------------------------------------------------------


def test_missing_error_is_the_default_and_names_file_row_and_column(tmp_path):
    program = dlc.load(spec(tmp_path, ""))
    with pytest.raises(DataError, match=r"`flowers.csv` row 3, column `size`: the cell is missing \(`NA`\)"):
        program.fit()


def test_missing_drop_drops_the_rows_and_says_how_many(tmp_path):
    program = dlc.load(spec(tmp_path, " missing=drop"))
    with pytest.warns(DataWarning, match=r"2 rows of `flowers.csv` with a missing cell were dropped"):
        program.fit()
    assert program.trained.program.data.examples == 6


def test_a_missing_label_is_never_filled(tmp_path):
    csv = FLOWERS + "1.0,red,3,NA\n"
    with pytest.raises(DataError, match=r"row 10, column `label`: the cell is missing, and a label is never filled"):
        dlc.load(spec(tmp_path, " missing=mean", csv)).fit()


def test_drop_at_predict_is_an_error_and_at_eval_drops(tmp_path):
    run = trained(tmp_path, " missing=drop")
    new = write(tmp_path, "new.csv", "petal,colour,size,label\n1,red,,x\n2,blue,3,y\n")
    session = dlc.load_run(run).trained
    with pytest.warns(DataWarning, match="1 row of `new.csv` with a missing cell dropped"):
        metrics = commands.evaluate(session, str(run), str(new), None).metrics
    assert set(metrics) == {"new.csv"}
    with pytest.raises(DataError, match=r"row 2, column `size`: the cell is missing: the model was trained with "
                                        r"`missing=drop`"):
        commands.predict(session, str(new), None)


def test_missing_mean_fills_cells_at_prediction_with_the_saved_means(tmp_path):
    run = trained(tmp_path)
    pre = json.loads((run / "preprocessing.json").read_text())
    means = {r["column"]: r.get("mean") for r in pre["encoding"]}
    session = dlc.load_run(run).trained
    filled = write(tmp_path, "filled.csv", f"petal,colour,size\n{means['petal']!r},blue,{means['size']!r}\n")
    holes = write(tmp_path, "holes.csv", "petal,colour,size\n?,,NA\n")
    assert commands.predict(session, str(holes), None) == commands.predict(session, str(filled), None)


# --- columns by name at eval and predict --------------------------------------------------------


def test_eval_and_predict_match_columns_by_name_and_ignore_extra_ones(tmp_path):
    run = trained(tmp_path)
    session = dlc.load_run(run).trained
    rows = FLOWERS.splitlines()[1:]
    ordered = write(tmp_path, "ordered.csv", "petal,colour,size,label\n" + "\n".join(rows) + "\n")
    cells = [row.split(",") for row in rows]
    shuffled = write(tmp_path, "shuffled.csv", "extra,size,label,colour,petal\n" + "\n".join(
        f"zz,{c[2]},{c[3]},{c[1]},{c[0]}" for c in cells) + "\n")
    assert commands.predict(session, str(shuffled), None) == commands.predict(session, str(ordered), None)
    assert commands.evaluate(session, str(run), str(shuffled), None).metrics["shuffled.csv"] == \
        commands.evaluate(session, str(run), str(ordered), None).metrics["ordered.csv"]


def test_a_missing_feature_column_is_named(tmp_path):
    run = trained(tmp_path)
    session = dlc.load_run(run).trained
    new = write(tmp_path, "new.csv", "petal,size\n1,2\n")
    with pytest.raises(DataError, match=r"`new.csv` has no column `colour`, which the model was trained on"):
        commands.predict(session, str(new), None)


def test_prediction_warns_of_a_category_training_never_saw(tmp_path):
    run = trained(tmp_path)
    session = dlc.load_run(run).trained
    new = write(tmp_path, "new.csv", "petal,colour,size\n1,purple,2\n1,red,2\n")
    with pytest.warns(DataWarning, match=r"column `colour` of `new.csv`: 1 row holds a category the training split "
                                         r"lacks \(`purple`\), encoded as all zeros"):
        commands.predict(session, str(new), None)


def test_a_category_that_looks_like_a_number_is_read_as_text_at_prediction(tmp_path):
    csv = "a,code,label\n1,01,x\n2,2,y\n3,b,x\n4,01,y\n"
    write(tmp_path, "codes.csv", csv)
    program = dlc.load(write(tmp_path, "c.dl", 'data "codes.csv" target="label"\ndense 2 softmax\n'
                                                "loss categorical_crossentropy\noptimizer sgd\nepochs 1"))
    program.fit()
    assert program.trained.prepared.encoding.columns[1]["categories"] == ["01", "2", "b"]
    numbers_only = write(tmp_path, "new.csv", "a,code\n1,01\n")  # NumPy alone would read `01` as 1.0
    x, _, source = read_features(numbers_only, columns=program.trained.prepared.columns)
    assert program.trained.predict(x, source).shape == (1, 2)
    assert commands.predict(program.trained, str(numbers_only), None) == \
        commands.predict(program.trained, str(write(tmp_path, "same.csv", "code,a\n01,1\n")), None)


# --- the run folder ---------------------------------------------------------------------------


def test_a_run_folder_without_an_encoding_still_loads(tmp_path):
    write(tmp_path, "n.csv", "a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    program = dlc.load(write(tmp_path, "n.dl", 'data "n.csv" target="label"\ndense 2 softmax\n'
                                               "loss categorical_crossentropy\noptimizer sgd\nepochs 1"))
    program.fit()
    run = program.save(tmp_path / "run")
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["encoding"] is None
    del pre["encoding"]  # as an older dlc wrote it
    (run / "preprocessing.json").write_text(json.dumps(pre))
    reloaded = dlc.load_run(run)
    assert reloaded.predict(np.array([[1.0, 2.0]])).shape == (1, 2)
    with pytest.raises(DataError, match=r"row 2, column `b`: the cell is missing"):
        commands.predict(reloaded.trained, str(write(tmp_path, "m.csv", "a,b\n1,\n")), None)


@pytest.mark.parametrize("damage", [
    lambda e: e[1].update(categories=["red", "blue"]),  # not sorted
    lambda e: e[1].update(kind="pixels"),
    lambda e: e[0].update(mean="2"),
    lambda e: e.pop(),
    lambda e: e[1].update(categories=["blue", "green", "red", "teal"]),  # another width than the model's
], ids=["unsorted", "unknown kind", "mean not a number", "a column short", "wider"])
def test_a_damaged_encoding_record_is_refused_in_one_line(tmp_path, damage):
    run = trained(tmp_path)
    pre = json.loads((run / "preprocessing.json").read_text())
    damage(pre["encoding"])
    (run / "preprocessing.json").write_text(json.dumps(pre))
    with pytest.raises(RunFolderError, match="preprocessing.json") as caught:
        dlc.load_run(run)
    assert "\n" not in str(caught.value)


# --- the shipped dataset ----------------------------------------------------------------------


def test_the_wine_csv_is_made_byte_for_byte_by_its_script(tmp_path):
    out = tmp_path / "wine.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_wine_csv.py"), "--out", str(out)], check=True,
                   capture_output=True)
    assert out.read_bytes() == (ROOT / "data" / "wine_mixed.csv").read_bytes()


def test_the_wine_spec_checks_with_its_categories_and_trains(tmp_path):
    program = dlc.load(ROOT / "specs" / "wine_mixed.dl")
    assert program.ir.data.categorical == (("colour", 3), ("hue", 3))
    history = program.fit(epochs=3)
    assert len(history) == 3 and np.isfinite(history[-1]["val_loss"])


def test_a_column_of_identifiers_is_warned_of(tmp_path):
    csv = "a,name,label\n" + "".join(f"{i},row{i},{'xy'[i % 2]}\n" for i in range(40))
    with pytest.warns(DataWarning, match=r"column `name` of `flowers.csv` has 30 categories in 30 training rows"):
        dlc.load(spec(tmp_path, " missing=mean", csv.replace("a,name,label", "petal,name,label"))).fit(epochs=1)
