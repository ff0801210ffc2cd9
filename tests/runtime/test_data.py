"""Loading and preparing real data: built-ins, CSV and NPZ files, seeded stratified splits,
normalization fitted on train only, label encoding, and one clear `DataError` per bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlc.compiler import ir
from dlc.compiler.registry import DATASETS
from dlc.runtime.data import apply_normalization, prepare
from dlc.runtime.sources import DataError, Source, load_source, read_features

HOUSING = Path(__file__).resolve().parents[2] / "data" / "housing.csv"


def data_of(kind: str, name: str, path: Path | None = None, target: str | None = None) -> ir.Data:
    """The `data` statement's IR as the checker would build it, with only what loading reads."""
    return ir.Data(kind, name, str(path) if path else None, 0.0, 0.0, "none", True, target,
                   None, "unknown", None, None, False, False)


def prep(x, y, **options):
    """`prepare` with nothing held out, no scaling and shuffling on, unless a test says otherwise."""
    settings = dict(task="categorical", input_shape=None, output_units=None, val=0.0, test=0.0,
                    normalize="none", shuffle=True, seed=0)
    return prepare(x, y, **(settings | options))


def identified(n: int, features: int = 2) -> np.ndarray:
    """Examples whose first feature is their own index, so a split can be traced back."""
    return np.column_stack([np.arange(n), np.random.default_rng(1).normal(size=(n, features - 1))])


# --- built-in datasets ------------------------------------------------------------------------


@pytest.mark.parametrize("entry", DATASETS, ids=[d.name for d in DATASETS])
def test_builtin_dataset_loads_with_its_registered_facts(entry):
    x, y, given, _ = load_source(data_of("builtin", entry.name))
    assert x.shape == (entry.examples, *entry.features)
    assert len(np.unique(y)) == entry.classes
    assert given == {}


def test_builtin_digits_prepared_as_images():
    x, y, _, _ = load_source(data_of("builtin", "digits"))
    prepared = prep(x, y, input_shape=(8, 8, 1), output_units=10, val=0.1, test=0.2, normalize="standard")
    parts = (prepared.train, prepared.val, prepared.test)
    assert [p.x.shape[1:] for p in parts] == [(8, 8, 1)] * 3
    assert sum(len(p.x) for p in parts) == len(x)
    assert {p.x.dtype for p in parts} == {np.dtype(np.float32)}
    assert {p.y.dtype for p in parts} == {np.dtype(np.int32)}
    assert prepared.labels == sorted(np.unique(y).tolist())


# --- splitting --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_split_bit_for_bit():
    x, y = identified(100, 3), np.arange(100) % 4
    first, again = (prep(x, y, val=0.2, test=0.1, seed=7, normalize="standard") for _ in range(2))
    for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test), strict=True):
        assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    other = prep(x, y, val=0.2, test=0.1, seed=8, normalize="standard")
    assert not np.array_equal(first.test.x, other.test.x)


@pytest.mark.parametrize("task", ["categorical", "regression"])
def test_every_example_lands_in_exactly_one_part(task):
    x, y = identified(50), np.arange(50) % 3
    prepared = prep(x, y, task=task, val=0.2, test=0.3)
    ids = np.concatenate([p.x[:, 0] for p in (prepared.train, prepared.val, prepared.test)])
    assert sorted(ids.tolist()) == list(range(50))
    assert (len(prepared.val.x), len(prepared.test.x)) == (10, 15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_parts_hold_each_class_in_proportion(seed):
    y = np.array(["common"] * 90 + ["rare"] * 10)
    prepared = prep(identified(100), y, val=0.2, test=0.1, seed=seed)
    for part, fraction in ((prepared.val, 0.2), (prepared.test, 0.1)):
        counts = np.bincount(part.y, minlength=2)
        assert np.all(np.abs(counts - fraction * np.array([90, 10])) < 1)


def test_binary_labels_are_stratified_too():
    y = np.array([0] * 80 + [1] * 20)
    prepared = prep(identified(100), y, task="binary", test=0.25, seed=3)
    assert prepared.test.y.sum() == 5


def test_without_shuffle_the_parts_follow_the_file_order():
    prepared = prep(identified(10), np.arange(10) % 2, val=0.2, test=0.2, shuffle=False)
    assert [p.x[:, 0].tolist() for p in (prepared.train, prepared.val, prepared.test)] == \
        [[0, 1, 2, 3, 4, 5], [6, 7], [8, 9]]


def test_nothing_held_out_unless_asked():
    prepared = prep(identified(10), np.arange(10) % 2)
    assert (len(prepared.train.x), prepared.val, prepared.test) == (10, None, None)


# --- normalization and shapes -----------------------------------------------------------------


def rising(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Features that grow along the file, so the held-out end differs from the training start."""
    x = np.column_stack([np.arange(n) ** 1.5, np.linspace(-3, 9, n), np.full(n, 4.0)])
    return x, np.linspace(0, 1, n)


def test_standard_normalization_uses_train_statistics_only():
    x, y = rising()
    prepared = prep(x, y, task="regression", test=0.25, normalize="standard", shuffle=False)
    train, held = x[:30], x[30:]
    scale = np.where(train.std(0) == 0, 1, train.std(0))
    assert np.allclose(prepared.normalization["shift"], train.mean(0))
    assert np.allclose(prepared.normalization["scale"], scale)
    assert np.allclose(prepared.test.x, (held - train.mean(0)) / scale, atol=1e-5)
    assert np.allclose(prepared.train.x[:, :2].mean(0), 0, atol=1e-5)
    assert np.allclose(prepared.train.x[:, :2].std(0), 1, atol=1e-5)


def test_minmax_maps_train_to_the_unit_interval():
    x, y = rising()
    prepared = prep(x, y, task="regression", val=0.25, normalize="minmax", shuffle=False)
    assert prepared.train.x[:, :2].min(0).tolist() == [0, 0]
    assert prepared.train.x[:, :2].max(0).tolist() == [1, 1]
    assert (prepared.val.x[:, :2] > 1).all()


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_a_constant_feature_is_shifted_not_divided_by_zero(kind):
    x, y = rising()
    prepared = prep(x, y, task="regression", normalize=kind)
    assert prepared.normalization["scale"][2] == 1
    assert np.all(prepared.train.x[:, 2] == 0)


def test_a_constant_feature_is_a_warning_naming_it():
    x, y = rising()
    prepared = prep(x, y, task="regression", normalize="standard", source="`d.csv`")
    assert prepared.warnings == ("feature 2 of `d.csv` is constant in the training split: `normalize=standard` "
                                 "makes it 0, so the model learns nothing from it",)
    assert prep(x, y, task="regression").warnings == ()  # unnormalized, it is only a feature like another


def test_statistics_that_overflow_are_an_error_naming_the_feature():
    """Inputs of 1e300 made the standard deviation infinite, every input 0, and training ran at chance."""
    x = np.column_stack([np.linspace(1, 2, 8), np.linspace(-1e300, 1e300, 8)])
    with pytest.raises(DataError, match=r"^feature 1 of `d\.npz` cannot be normalized: its standard deviation "
                                        r"overflows \(its values reach 1e\+300\)"):
        prep(x, np.arange(8) % 2, normalize="standard", source="`d.npz`")


def test_a_value_float32_cannot_hold_is_an_error_naming_the_feature():
    x = np.column_stack([np.linspace(1, 2, 8), np.full(8, 1e39)])
    with pytest.raises(DataError, match=r"^feature 1 of the arrays holds 1e\+39, beyond float32's range"):
        prep(x, np.arange(8) % 2, source="the arrays")
    with pytest.raises(DataError, match=r"^`y` in the arrays has 1 value beyond float32's range \(±3\.4e38\), "
                                        r"the first at `y\[3, 0\]`"):
        prep(np.ones((8, 2)), np.where(np.arange(8) == 3, 1e39, 1.0), task="regression", source="the arrays")


def test_a_class_only_in_a_held_out_part_is_a_warning():
    x, y = identified(12), np.arange(12) % 2
    prepared = prep(x, y, given={"val": (identified(3), np.array([0, 1, 2]))})
    assert prepared.warnings == ("class `2` is in the val split but not in the training split: "
                                 "the model cannot learn it",)
    assert prep(x, y, test=0.25).warnings == ()


def test_normalization_is_json_ready():
    import json

    x, y = rising()
    normalization = prep(x, y, task="regression", normalize="standard").normalization
    assert json.loads(json.dumps(normalization)) == normalization
    assert normalization["kind"] == "standard" and len(normalization["shift"]) == 3


def test_apply_normalization_repeats_what_prepare_did():
    x, y, _, _ = load_source(data_of("builtin", "digits"))
    prepared = prep(x, y, input_shape=(8, 8, 1), test=0.2, normalize="standard", shuffle=False)
    held = x[len(prepared.train.x):]
    assert np.array_equal(apply_normalization(held, prepared.normalization, (8, 8, 1)), prepared.test.x)


def test_input_shape_reshapes_each_example_in_order():
    x = np.arange(24.0).reshape(2, 12)
    prepared = prep(x, [0, 1], input_shape=(2, 3, 2), shuffle=False)
    assert prepared.train.x.shape == (2, 2, 3, 2)
    assert np.array_equal(prepared.train.x.reshape(2, 12), x)


# --- labels -----------------------------------------------------------------------------------


def test_text_labels_become_sorted_indices():
    prepared = prep(identified(4), ["cat", "dog", "ant", "dog"], shuffle=False)
    assert prepared.labels == ["ant", "cat", "dog"]
    assert prepared.train.y.tolist() == [1, 2, 0, 2]


def test_a_saved_label_mapping_is_kept():
    prepared = prep(identified(3), ["cat", "dog", "ant"], labels=["dog", "cat", "ant"], shuffle=False)
    assert prepared.train.y.tolist() == [1, 0, 2]


def test_whole_float_labels_are_integer_classes():
    prepared = prep(identified(3), np.array([2.0, 5.0, 2.0]), shuffle=False)
    assert prepared.labels == [2, 5] and prepared.train.y.tolist() == [0, 1, 0]


@pytest.mark.parametrize(("y", "labels", "encoded"), [
    (np.array([0, 1, 1]), [0, 1], [0, 1, 1]),
    (np.array([True, False, True]), [0, 1], [1, 0, 1]),
    (np.array(["spam", "ham", "spam"]), ["ham", "spam"], [1, 0, 1]),
    (np.array([3, 7, 7]), [3, 7], [0, 1, 1]),
])
def test_binary_targets_become_one_float_column(y, labels, encoded):
    prepared = prep(identified(3), y, task="binary", output_units=1, shuffle=False)
    assert prepared.labels == labels
    assert prepared.train.y.dtype == np.float32 and prepared.train.y.shape == (3, 1)
    assert prepared.train.y[:, 0].tolist() == encoded


def test_several_binary_labels_per_example_keep_their_columns():
    y = np.array([[0, 1, 1], [1, 0, 0]])
    prepared = prep(identified(2), y, task="binary", output_units=3, shuffle=False)
    assert prepared.train.y.tolist() == y.tolist()


def test_regression_targets_are_float_columns():
    prepared = prep(identified(4), np.arange(4), task="regression", output_units=1)
    assert prepared.labels is None
    assert prepared.train.y.dtype == np.float32 and prepared.train.y.shape == (4, 1)


# --- files ------------------------------------------------------------------------------------


def write_csv(tmp_path: Path, text: str | bytes, name: str = "houses.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_shipped_housing_csv_is_a_near_linear_regression():
    x, y, given, _ = load_source(data_of("csv", "housing.csv", HOUSING, target="price"))
    assert x.shape[0] == len(y) and 200 <= len(y) <= 400 and x.shape[1] >= 3 and given == {}
    design = np.column_stack([x, np.ones(len(x))])
    fit, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ fit
    assert residual.var() < 0.1 * y.var()


def test_csv_target_may_hold_class_names(tmp_path):
    path = write_csv(tmp_path, "length,width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,setosa\n")
    x, y, _, _ = load_source(data_of("csv", path.name, path, target="species"))
    assert x.dtype == np.float32 and np.array_equal(x, np.float32([[5.1, 3.5], [7.0, 3.2], [6.3, 3.3]]))
    assert prep(x, y, shuffle=False).labels == ["setosa", "versicolor"]


def test_csv_target_column_may_sit_anywhere(tmp_path):
    path = write_csv(tmp_path, "price,area\n10,1.5\n20,2.5\n")
    x, y, _, _ = load_source(data_of("csv", path.name, path, target="price"))
    assert x.tolist() == [[1.5], [2.5]] and y.tolist() == [10, 20]


def test_csv_features_are_read_by_name_in_the_order_given(tmp_path):
    path = write_csv(tmp_path, "id,c,price,a,b\nx1,3,30,1,2\nx2,6,60,4,5\n")
    x, y, source = read_features(path, target="price", with_target=True, columns=("a", "b", "c"))
    assert x.tolist() == [[1, 2, 3], [4, 5, 6]] and y.tolist() == [30, 60] and source.columns == ("a", "b", "c")
    with pytest.raises(DataError, match=r"^`houses\.csv` has no column `width`, which the model was trained on$"):
        read_features(path, columns=("a", "width"))


# Files that NumPy's parser and the cell-by-cell reader must read alike (or refuse alike).
TRICKY_CSV = {
    "quoted cells": 'a,t\n"1","2"\n" 3 ",4\n',
    "a line break in a quoted cell": 'a,t\n"1\n",2\n',
    "CRLF and blank lines": "a,t\r\n1,2\r\n\r\n3,4\r\n",
    "CR only": "a,t\r1,2\r3,4\r",
    "no final newline": "a,t\n1,2\n3,4",
    "byte-order mark": "\ufeffa,t\n1,2\n",
    "spaces and tabs": "a,t\n 1 ,\t2 \n",
    "numbers only Python reads": "a,t\n1_000,2\n",
    "class names": "a,t\n1,cat\n2, dog\n",
    "numbers and names": "a,t\n1,1\n2,dog\n",
    "a comment sign": "a,t\n1,2 # c\n",
    "a whole target too large for int64": "a,t\n1,1e20\n",
    "a trailing comma": "a,t\n1,2,\n",
    "a line of spaces": "a,t\n1,2\n   \n",
    "a NUL byte": "a,t\n1\x00,2\n",
    "hexadecimal": "a,t\n0x1,2\n",
}


@pytest.mark.parametrize("text", TRICKY_CSV.values(), ids=TRICKY_CSV.keys())
def test_numpy_and_cell_by_cell_reading_agree(tmp_path, text):
    from dlc.runtime import csvread

    path = write_csv(tmp_path, text, "d.csv")

    def read(by_numpy: bool):
        try:
            if by_numpy:
                x, y, _ = read_features(path, target="t", with_target=True)
            else:
                header = csvread.column_names(path)
                cells, source = csvread.Cells(), Source("`d.csv`", ("a",), path, "t")
                x, codes = csvread.by_cell(path, header, [header.index("a")], header.index("t"), cells)
                y, _ = csvread.target_column(cells, codes, source)
        except DataError as e:
            return str(e)
        if isinstance(x, np.ndarray):
            return x.dtype, x.tolist(), y.dtype.kind, y.tolist()
        cells = [[cell.strip() for cell in column] for column in x] if isinstance(x, list) else \
            [column.tolist() for column in x.cells]  # cells that are no numbers, as text for the encoder
        return "text", cells, y.dtype.kind, y.tolist()

    assert read(by_numpy=True) == read(by_numpy=False)


def test_a_csv_larger_than_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = write_csv(tmp_path, "a,b,price\n" + "1.5,2.5,3\n" * 1000)
    monkeypatch.setattr("dlc.runtime.sources.machine_memory", lambda: 16 * 1024)
    with pytest.raises(DataError, match=r"^`houses\.csv` holds about 1,0\d\d rows of 3 columns: reading them needs "
                                        r"about .* more than this machine's 16\.0 KiB of memory$"):
        read_features(path, target="price")


def test_bad_labels_from_a_csv_are_named_by_row_and_column(tmp_path):
    path = write_csv(tmp_path, "a,price\n1,0\n\n2,0.5\n3,1\n")
    x, y, _, source = load_source(data_of("csv", path.name, path, target="price"))
    with pytest.raises(DataError, match=r"^`houses\.csv` row 4, column `price` is 0\.5, not a class label"):
        prep(x, y, source=source)
    with pytest.raises(DataError, match=r"^`houses\.csv` row 5, column `price` is `1`, which is not one of the "
                                        r"model's 2 classes \(`0`, `5`\)"):
        prep(x, np.array([0, 5, 1]), labels=[0, 5], source=source)


def save_npz(tmp_path: Path, name: str = "arrays.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_brings_its_own_val_and_test_splits(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.normal(size=(n, 3)) + shift for name, n, shift in
              (("x", 30, 0), ("x_val", 7, 5), ("x_test", 9, -5))}
    labels = {f"y{name[1:]}": np.arange(len(x)) % 3 for name, x in arrays.items()}
    x, y, given, _ = load_source(data_of("npz", "arrays.npz", save_npz(tmp_path, **arrays, **labels)))
    prepared = prep(x, y, given=given, normalize="standard")
    assert (len(prepared.val.x), len(prepared.test.x)) == (7, 9)
    assert prepared.val.y.tolist() == labels["y_val"].tolist()
    expected_val = (arrays["x_val"] - arrays["x"].mean(0)) / arrays["x"].std(0)
    assert np.allclose(prepared.val.x, expected_val, atol=1e-5)


def test_a_given_split_and_a_fraction_for_it_conflict():
    x, y = identified(10), np.arange(10) % 2
    with pytest.raises(DataError, match=r"brings its own `x_val`, and `val=0.2`"):
        prep(x, y, val=0.2, given={"val": (x[:3], y[:3])})


def test_npz_with_one_feature_per_example_reads_as_a_column(tmp_path):
    x, _, _, _ = load_source(data_of("npz", "a.npz", save_npz(tmp_path, "a.npz", x=np.arange(5.0), y=np.arange(5))))
    assert x.shape == (5, 1)


def test_read_features_drops_the_target_when_present(tmp_path):
    path = write_csv(tmp_path, "area,price\n1.5,10\n2.5,20\n")
    assert read_features(path)[0].tolist() == [[1.5, 10], [2.5, 20]]
    x, y, _ = read_features(path, target="price", with_target=True)
    assert x.tolist() == [[1.5], [2.5]] and y.tolist() == [10, 20]
    x, y, _ = read_features(path, target="price")
    assert x.tolist() == [[1.5], [2.5]] and y is None
    without = write_csv(tmp_path, "area\n1.5\n", "new.csv")
    x, y, _ = read_features(without, target="price")
    assert x.tolist() == [[1.5]] and y is None


def test_read_features_from_npz_without_labels(tmp_path):
    x, y, _ = read_features(save_npz(tmp_path, x=np.ones((2, 4))))
    assert x.shape == (2, 4) and y is None


# --- bad data ---------------------------------------------------------------------------------

BAD_CSV = {
    "empty file": ("", "`houses.csv` is empty"),
    "header only": ("area,rooms,price\n", "`houses.csv` has a header but no rows"),
    "ragged row": ("area,rooms,price\n1,2,3\n4,5,6\n7,8,9\n1,2\n",
                   "`houses.csv` row 5 has 2 cells, the header has 3"),
    "not a number": ("area,rooms,price\n1,2,3\n4,5,6\n7,8,9\n1,2,abc\n",
                     "`houses.csv` row 5, column `price` is `abc`, not a number"),
    "empty cell": ("area,rooms,price\n1,,3\n", "`houses.csv` row 2, column `rooms`: the cell is missing"),
    "empty target cell": ("area,rooms,price\n1,2,3\n1,2,\n", "`houses.csv` row 3, column `price`: the cell is missing"),
    "nan": ("area,rooms,price\n1,2,3\n1,NaN,3\n", "`houses.csv` row 3, column `rooms`: the cell is missing (`NaN`)"),
    "beyond float32": ("area,rooms,price\n1,2,3\n1,-1e39,3\n",
                       "`houses.csv` row 3, column `rooms`: `-1e39` is beyond float32's range (±3.4e38)"),
    "infinite target": ("area,rooms,price\n1,2,inf\n", "`houses.csv` row 2, column `price`: `inf` is not a finite"),
    "blank lines still count": ("area,rooms,price\n1,2,3\n\n4,NA,6\n", "`houses.csv` row 4, column `rooms`"),
    "duplicate header": ("area,area,price\n1,2,3\n", "`houses.csv` row 1 names the column `area` twice"),
    "unnamed column": ("area,,price\n1,2,3\n", "`houses.csv` row 1, column 2 has no name"),
    "missing target": ("area,rooms,prices\n1,2,3\n", "`houses.csv` has no target column `price`: did you mean `prices`?"),
    "target only": ("price\n3\n", "`houses.csv` has only the target column `price`"),
    "not utf-8": (b"area,price\n\xff\xfe,1\n", "`houses.csv` is not UTF-8 text"),
}


@pytest.mark.parametrize(("text", "message"), BAD_CSV.values(), ids=BAD_CSV.keys())
def test_bad_csv_is_one_line_naming_file_row_and_column(tmp_path, text, message):
    from dlc.runtime.table import Table
    from dlc.runtime.tabular import prepare_table

    path = write_csv(tmp_path, text)
    with pytest.raises(DataError) as caught:
        x, y, _, source = load_source(data_of("csv", path.name, path, target="price"))
        split = dict(task="regression", val=0.0, test=0.0, normalize="none", shuffle=False, seed=0, source=source)
        if isinstance(x, Table):  # a missing cell is refused as the cells are encoded
            prepare_table(x, y, missing="error", text=None, **split)
        else:
            prepare(x, y, input_shape=None, output_units=None, **split)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"data file `.*nowhere\.csv` not found"):
        load_source(data_of("csv", "nowhere.csv", tmp_path / "nowhere.csv", target="price"))


BAD_NPZ = {
    "object array": (dict(x=np.ones((2, 2)), y=np.array([{"a": 1}, None], dtype=object)),
                     "array `y` in `arrays.npz` holds Python objects"),
    "no x": (dict(features=np.ones((2, 2)), y=np.ones(2)), "`arrays.npz` has no array `x`"),
    "no y": (dict(x=np.ones((2, 2))), "`arrays.npz` has no array `y`"),
    "lengths differ": (dict(x=np.ones((3, 2)), y=np.ones(2)), "`x` has 3 examples but `y` has 2"),
    "val lengths differ": (dict(x=np.ones((3, 2)), y=np.ones(3), x_val=np.ones((2, 2)), y_val=np.ones(1)),
                           "`x_val` has 2 examples but `y_val` has 1"),
    "half a pair": (dict(x=np.ones((3, 2)), y=np.ones(3), x_test=np.ones((2, 2))), "has `x_test` without `y_test`"),
    "scalar": (dict(x=np.ones((3, 2)), y=np.float64(1)), "array `y` in `arrays.npz` is a single value"),
}


@pytest.mark.parametrize(("arrays", "message"), BAD_NPZ.values(), ids=BAD_NPZ.keys())
def test_bad_npz_is_one_line_naming_file_and_array(tmp_path, arrays, message):
    path = save_npz(tmp_path, **arrays)
    with pytest.raises(DataError) as caught:
        load_source(data_of("npz", path.name, path))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"x,y\n1,2\n", b"PK\x03\x04 truncated"], ids=["empty", "text", "broken zip"])
def test_a_file_that_is_not_an_npz_archive_is_refused(tmp_path, content):
    path = write_csv(tmp_path, content, "arrays.npz")
    with pytest.raises(DataError, match=r"`arrays\.npz`.* NPZ archive"):
        load_source(data_of("npz", path.name, path))


def test_read_features_refuses_other_file_kinds(tmp_path):
    with pytest.raises(DataError, match=r"unsupported data file `table\.xlsx`"):
        read_features(write_csv(tmp_path, "a\n1\n", "table.xlsx"))


X4 = identified(4)
BAD_PREPARE = {
    "more classes than units": (dict(x=identified(12), y=np.arange(12), output_units=10),
                                "labels in `d.csv` have 12 classes but the output has 10 units"),
    "nan in x": (dict(x=np.array([[1, 2], [np.nan, 3], [np.inf, 1], [0, 0]])),
                 "`x` in `d.csv` has 2 NaN or infinite values, the first at `x[1, 0]`"),
    "inf in regression y": (dict(y=np.array([1, 2, np.inf, 4]), task="regression"),
                            "`y` in `d.csv` has 1 NaN or infinite value, the first at `y[2, 0]`"),
    "text regression target": (dict(y=np.array(["1.5", "2", "abc", "3"]), task="regression"),
                               "`y[2]` in `d.csv` is `abc`, not a number"),
    "regression width": (dict(y=np.ones((4, 2)), task="regression", output_units=1),
                         "targets in `d.csv` have 2 values per example but the output has 1 unit"),
    "three binary classes": (dict(y=np.array(["a", "b", "c", "a"]), task="binary"),
                             "a binary loss needs two classes, but `d.csv` has 3"),
    "binary width": (dict(y=np.array([0, 1, 1, 0]), task="binary", output_units=2),
                     "targets in `d.csv` have 1 column but the output has 2 units"),
    "multi-label not 0/1": (dict(y=np.array([[0, 1], [1, 2], [0, 0], [1, 1]]), task="binary"),
                            "`y[1, 1]` in `d.csv` is 2"),
    "fractional class": (dict(y=np.array([0, 1, 0.5, 1])), "`y[2]` in `d.csv` is 0.5, not a class label"),
    "one-hot classes": (dict(y=np.eye(4)), "pass `y.argmax(1)`"),
    "unknown saved label": (dict(y=np.array(["a", "b", "z", "a"]), labels=["a", "b"]),
                            "`y[2]` in `d.csv` is `z`, which is not one of the model's 2 classes (`a`, `b`)"),
    "one-dimensional x": (dict(x=np.arange(4.0)), "`x` in `d.csv` has shape (4,)"),
    "empty x": (dict(x=np.empty((0, 3)), y=np.empty(0)), "`x` in `d.csv` has no examples"),
    "text x": (dict(x=np.array([["a", "b"]] * 4)), "`x` in `d.csv` holds text, not numbers"),
    "lengths differ": (dict(y=np.arange(3)), "`x` in `d.csv` has 4 examples but `y` has 3"),
    "input element count": (dict(input_shape=(3, 3)),
                            "examples in `d.csv` have 2 values but the model takes 9"),
    "too few to hold out": (dict(val=0.5, test=0.5), "`d.csv` has 4 examples: too few to hold out"),
}


@pytest.mark.parametrize(("options", "message"), BAD_PREPARE.values(), ids=BAD_PREPARE.keys())
def test_bad_examples_or_targets_are_named(options, message):
    options = {"x": X4, "y": np.arange(4) % 2, "source": "`d.csv`"} | options
    with pytest.raises(DataError) as caught:
        prep(options.pop("x"), options.pop("y"), **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_apply_normalization_without_scaling_only_reshapes():
    x = np.arange(8.0).reshape(2, 4)
    assert np.array_equal(apply_normalization(x, {"kind": "none"}, (2, 2)), x.reshape(2, 2, 2))


def test_apply_normalization_refuses_a_different_feature_count():
    normalization = prep(identified(6, 3), np.arange(6) % 2, normalize="standard").normalization
    with pytest.raises(DataError, match="have 2 values but the model takes 3"):
        apply_normalization(np.ones((2, 2)), normalization, None)


@pytest.mark.parametrize("entry", DATASETS, ids=lambda e: e.name)
def test_built_ins_read_straight_from_the_wheel_equal_scikit_learns_loader(entry):
    import sklearn.datasets

    from dlc.runtime.sources import read_shipped

    x, y = read_shipped(entry)
    expected_x, expected_y = entry.load(sklearn.datasets)
    assert np.array_equal(x, expected_x) and np.array_equal(y, expected_y)
