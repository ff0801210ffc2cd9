"""`dlc run`, `dlc eval` and `dlc predict` end to end, in-process through `dlc.cli.main`: a run on
every built-in dataset and on the shipped regression CSV leaves the run folder the language
promises, `eval` reproduces its splits, `predict` writes a row per example; bad input exits
non-zero with diagnostics or one `dlc: error:` line, never a traceback."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import dlc
from dlc.cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, main
from dlc.compiler import registry as reg

REPO = Path(__file__).resolve().parents[2]
HOUSING = REPO / "data" / "housing.csv"
REGRESSION_SPEC = REPO / "specs" / "regression.dl"
EPOCHS = 2


@dataclass(frozen=True)
class Run:
    folder: Path
    spec: Path
    seed: int  # the seed the run must record


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `dlc ARGS`; usable where `capsys` is not (module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    return status, out.getvalue(), err.getvalue()


def trained(spec: Path, folder: Path, *options: str) -> Path:
    status, _, err = run_cli(["run", str(spec), "--epochs", str(EPOCHS), "--out", str(folder), "-q", *options])
    assert status == EXIT_OK, err
    return folder


def builtin_spec(dataset: reg.Dataset) -> str:
    """A linear classifier for a built-in dataset, from the facts the registry holds about it
    (the smallest model: compiling it is most of a run's time)."""
    output = ("dense 1 sigmoid\nloss binary_crossentropy" if dataset.classes == 2
              else f"dense {dataset.classes} softmax\nloss categorical_crossentropy")
    return (f"data {dataset.name} val=0.2 test=0.2 normalize=standard\n{output}\n"
            "optimizer sgd lr=0.1\nmetrics accuracy\n")


@pytest.fixture(scope="module")
def housing_run(tmp_path_factory) -> Run:
    """The shipped regression example (`data "../data/housing.csv" target="price"`), shortened."""
    folder = trained(REGRESSION_SPEC, tmp_path_factory.mktemp("housing") / "run")
    return Run(folder, REGRESSION_SPEC, dlc.load(REGRESSION_SPEC).ir.seed)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def assert_run_folder(run: Run) -> dict:
    """The run folder contract of `dlc run`; returns metrics.json."""
    folder = run.folder
    text = run.spec.read_text(encoding="utf-8")
    assert (folder / "spec.dl").read_text(encoding="utf-8") == text

    history = list(csv.DictReader((folder / "history.csv").read_text(encoding="utf-8").splitlines()))
    assert [row["epoch"] for row in history] == [str(e) for e in range(1, EPOCHS + 1)]
    assert {"loss", "val_loss", "epoch_time"} <= set(history[0])
    assert all(math.isfinite(float(value)) for row in history for value in row.values())

    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["epochs_run"] == EPOCHS and metrics["stopped_early"] is False
    assert isinstance(metrics["best_epoch"], int) and 1 <= metrics["best_epoch"] <= EPOCHS
    assert {"train", "val", "test"} <= set(metrics)
    assert all(math.isfinite(metrics[split]["loss"]) for split in ("train", "val", "test"))

    assert any((folder / "checkpoint").iterdir())
    assert (folder / "curves.png").read_bytes().startswith(b"\x89PNG")
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert all(isinstance(record[name], str) for name in ("dlc", "jax", "flax", "optax"))
    assert record["seed"] == run.seed
    assert record["spec_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    return metrics


# --- runs on the built-in datasets ------------------------------------------------------------


def assert_eval_reproduces_the_splits(run: Run, recorded: dict) -> None:
    """`dlc eval RUN` reloads the data, splits and normalizes it as the run did (same seed)."""
    status, out, err = run_cli(["eval", str(run.folder), "--format", "json"])
    assert status == EXIT_OK, err
    evaluated = json.loads(out)
    assert set(evaluated) == {"train", "val", "test"}
    for split, metrics in evaluated.items():
        assert metrics == pytest.approx(recorded[split], abs=1e-6)


def assert_predicts_classes(run: Run, dataset: reg.Dataset, scratch: Path) -> None:
    """`dlc predict RUN examples.npz` writes the class and its probabilities, one row per example."""
    import sklearn.datasets

    x, _ = dataset.load(sklearn.datasets)
    np.savez(scratch / "examples.npz", x=x[:20])
    status, _, err = run_cli(["predict", str(run.folder), str(scratch / "examples.npz"), "-o", str(scratch / "p.csv")])
    assert status == EXIT_OK, err
    header, *rows = read_csv(scratch / "p.csv")
    assert header[0] == "prediction" and len(rows) == 20
    probabilities = np.array([[float(p) for p in row[1:]] for row in rows])
    if dataset.classes == 2:  # one column: the probability of the second class
        assert [row[0] for row in rows] == [str(int(p > 0.5)) for p in probabilities[:, 0]]
    else:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
        assert [row[0] for row in rows] == [str(i) for i in probabilities.argmax(axis=1)]


@pytest.mark.parametrize("dataset", reg.DATASETS, ids=[d.name for d in reg.DATASETS])
def test_run_eval_and_predict_on_a_builtin_dataset(dataset, tmp_path):
    """One test per dataset, so that parallel workers never train the same run twice."""
    spec = tmp_path / "spec.dl"
    spec.write_text(builtin_spec(dataset), encoding="utf-8")
    run = Run(trained(spec, tmp_path / "run", "--seed", "3"), spec, seed=3)
    metrics = assert_run_folder(run)
    assert all(0 <= metrics[split]["accuracy"] <= 1 for split in ("train", "val", "test"))
    assert_eval_reproduces_the_splits(run, metrics)
    assert_predicts_classes(run, dataset, tmp_path)


# --- the shipped regression CSV, and the same data as NPZ -------------------------------------


def housing_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The shipped CSV's features (every column but `price`, in order) and its `price`."""
    header, *rows = read_csv(HOUSING)
    table = np.array(rows, dtype=np.float64)
    price = header.index("price")
    return np.delete(table, price, axis=1), table[:, price]


def test_run_on_the_shipped_csv_writes_the_run_folder(housing_run):
    assert_run_folder(housing_run)


@pytest.fixture(scope="module")
def housing_npz(tmp_path_factory) -> Path:
    x, y = housing_arrays()
    path = tmp_path_factory.mktemp("npz") / "housing.npz"
    np.savez(path, x=x, y=y)
    return path


def evaluated(run: Run, data: Path) -> dict:
    status, out, err = run_cli(["eval", str(run.folder), str(data), "--format", "json"])
    assert status == EXIT_OK, err
    return json.loads(out)[data.name]


def predicted(run: Run, data: Path, out: Path) -> list[list[str]]:
    status, _, err = run_cli(["predict", str(run.folder), str(data), "-o", str(out)])
    assert status == EXIT_OK, err
    return read_csv(out)


def test_eval_and_predict_on_the_shipped_csv_agree(housing_run, tmp_path):
    metrics = evaluated(housing_run, HOUSING)
    assert set(metrics) == {"loss", "mae"}
    header, *rows = predicted(housing_run, HOUSING, tmp_path / "out.csv")  # the `price` column is left out
    _, price = housing_arrays()
    assert header == ["prediction"] and len(rows) == len(price)
    prediction = np.array([float(row[0]) for row in rows])
    assert metrics["loss"] == pytest.approx(np.mean((prediction - price) ** 2), rel=1e-4)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(prediction - price)), rel=1e-4)


def test_eval_on_the_whole_csv_weighs_the_runs_splits_by_size(housing_run):
    """The file is train + val + test: evaluated with the normalization the run saved, its loss is
    the mean of the splits' losses weighted by their sizes."""
    program = dlc.load_run(housing_run.folder)
    splits = program.trained.evaluate_spec_splits()
    sizes = {name: len(getattr(program.trained.prepared, name).x) for name in splits}
    whole = evaluated(housing_run, HOUSING)
    for metric, value in whole.items():
        weighted = sum(sizes[name] * splits[name][metric] for name in splits) / sum(sizes.values())
        assert value == pytest.approx(weighted, rel=1e-5)


def test_loaded_run_evaluates_its_test_split_by_default(housing_run):
    recorded = json.loads((housing_run.folder / "metrics.json").read_text(encoding="utf-8"))
    assert dlc.load_run(housing_run.folder).evaluate() == pytest.approx(recorded["test"], abs=1e-6)


def test_eval_and_predict_on_npz_match_the_csv(housing_run, housing_npz, tmp_path):
    """The same numbers; a CSV is read straight into float32, the NPZ holds float64, so the last
    digit may differ."""
    assert evaluated(housing_run, housing_npz) == pytest.approx(evaluated(housing_run, HOUSING), rel=1e-5)
    from_npz, from_csv = (predicted(housing_run, data, tmp_path / f"{data.suffix[1:]}.csv")
                          for data in (housing_npz, HOUSING))
    assert from_npz[0] == from_csv[0]
    np.testing.assert_allclose(np.array(from_npz[1:], float), np.array(from_csv[1:], float), rtol=1e-5)


# --- refusals ---------------------------------------------------------------------------------


def one_error_line(err: str) -> str:
    """stderr must be a single `dlc: error:` line: no traceback, no cascade."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlc: error: "), err
    return lines[0]


@pytest.fixture
def spec_file(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "spec.dl"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def test_out_folder_that_is_not_empty_is_a_usage_error(spec_file, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    status, _, err = run_cli(["run", str(spec_file(builtin_spec(reg.DATASETS[0]))), "--out", str(out)])
    assert status == EXIT_USAGE
    assert "already exists" in one_error_line(err)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_invalid_spec_exits_1_with_its_diagnostics(spec_file, tmp_path):
    spec = spec_file("data iris\ndense 3 softmaxx\nloss categorical_crossentropy\noptimizer adam\n")
    status, _, err = run_cli(["run", str(spec), "--out", str(tmp_path / "run")])
    assert status == EXIT_ERRORS
    assert f"{spec}:2:9: error[E203]: unknown activation `softmaxx`" in err
    assert "^^^^^^^^" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bad_data_file_exits_1_with_one_line(spec_file, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,,1\n", encoding="utf-8")  # a missing cell
    spec = spec_file('data "bad.csv" target="label"\ndense 2 softmax\nloss categorical_crossentropy\n'
                     "optimizer adam\n")
    status, _, err = run_cli(["run", str(spec), "--out", str(tmp_path / "run"), "-q"])
    assert status == EXIT_ERRORS
    assert "`bad.csv` row 3, column `b`" in one_error_line(err)


def test_eval_of_a_folder_that_is_no_run_exits_1_with_one_line(tmp_path):
    status, _, err = run_cli(["eval", str(tmp_path)])
    assert status == EXIT_ERRORS
    assert "not a run folder" in one_error_line(err)


def test_predict_on_an_unsupported_file_exits_1_with_one_line(housing_run, tmp_path):
    (tmp_path / "examples.txt").write_text("1 2 3 4\n", encoding="utf-8")
    status, _, err = run_cli(["predict", str(housing_run.folder), str(tmp_path / "examples.txt")])
    assert status == EXIT_ERRORS
    assert "unsupported data file" in one_error_line(err)
