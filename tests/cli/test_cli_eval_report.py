"""`dlc eval --report`: per-class precision, recall, F1, support and the confusion matrix of a
classifier (categorical and one sigmoid unit), residual statistics of a regression, each number
held to scikit-learn's on the predictions `dlc predict` gives for the same file; the table on the
terminal, the same numbers as JSON, and the figure in the run folder, never through a link."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk
from test_cli_run import HOUSING, REGRESSION_SPEC, read_csv, run_cli, trained

from dlc.cli import EXIT_ERRORS, EXIT_OK

SPECS = {
    "categorical": "dense 3 softmax\nloss categorical_crossentropy",
    "binary": "dense 1 sigmoid\nloss binary_crossentropy",
}
LABELS = {"categorical": ["cat", "cow", "dog"], "binary": ["no", "yes"]}


def examples(kind: str, rows: int = 60) -> str:
    """A CSV of two features whose label (`t`) they mostly tell, with some noise."""
    rng = np.random.default_rng(len(kind))
    labels = LABELS[kind]
    lines = ["a,b,t"]
    for i in range(rows):
        k = i % len(labels)
        lines.append(f"{k + rng.normal(scale=0.8):.3f},{rng.normal():.3f},{labels[k]}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", params=list(SPECS))
def classifier(request, tmp_path_factory) -> tuple[str, Path]:
    kind = request.param
    folder = tmp_path_factory.mktemp(kind)
    (folder / "train.csv").write_text(examples(kind), encoding="utf-8")
    (folder / "spec.dl").write_text(f'data "train.csv" target="t" val=0.2 test=0.25 normalize=standard\n'
                                    f"{SPECS[kind]}\noptimizer adam lr=0.05\nmetrics accuracy\n", encoding="utf-8")
    return kind, trained(folder / "spec.dl", folder / "run")


def evaluated(*args: str) -> dict:
    status, out, err = run_cli(["eval", *args, "--format", "json"])
    assert status == EXIT_OK, err
    return json.loads(out)


def test_the_report_on_a_file_is_scikit_learns_on_the_predictions(classifier, tmp_path):
    kind, run = classifier
    data = tmp_path / "new.csv"
    data.write_text(examples(kind, rows=45), encoding="utf-8")
    found = evaluated(str(run), str(data), "--report")
    report = found["report"]
    status, _, err = run_cli(["predict", str(run), str(data), "-o", str(tmp_path / "predicted.csv")])
    assert status == EXIT_OK, err
    predicted = [row[0] for row in read_csv(tmp_path / "predicted.csv")[1:]]
    true = [row[2] for row in read_csv(data)[1:]]
    classes = LABELS[kind]
    theirs = sk.classification_report(true, predicted, labels=classes, output_dict=True, zero_division=0)

    assert (report["file"], report["kind"], report["examples"]) == ("new.csv", "classification", 45)
    assert [c["class"] for c in report["classes"]] == classes
    for row in report["classes"]:
        expected = theirs[row["class"]]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"]), abs=1e-12)
        assert row["support"] == expected["support"]
    for ours, their in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        assert report[ours]["f1"] == pytest.approx(theirs[their]["f1-score"], abs=1e-12)
    assert report["accuracy"] == pytest.approx(sk.accuracy_score(true, predicted), abs=1e-12)
    assert report["confusion"] == sk.confusion_matrix(true, predicted, labels=classes).tolist()
    assert report["accuracy"] == pytest.approx(found["metrics"]["new.csv"]["accuracy"], abs=1e-6)
    assert Path(report["figure"]) == run / "confusion.png"
    assert (run / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_the_report_of_the_spec_data_is_on_the_test_split(classifier):
    _, run = classifier
    found = evaluated(str(run), "--report")
    assert set(found["metrics"]) == {"train", "val", "test"}
    report = found["report"]
    assert report["split"] == "test" and report["examples"] == sum(map(sum, report["confusion"])) == 15
    assert report["accuracy"] == pytest.approx(found["metrics"]["test"]["accuracy"], abs=1e-6)


def test_the_report_on_the_terminal_is_tables(classifier):
    kind, run = classifier
    status, out, err = run_cli(["eval", str(run), "--report"])
    assert status == EXIT_OK, err
    metrics, report = out.split("\n\n", 1)
    assert metrics.splitlines()[0].split() == ["split", "accuracy", "loss"]
    lines = report.splitlines()
    assert lines[0] == "report on the test split (15 examples)"
    assert lines[1].split() == ["class", "precision", "recall", "f1", "support"]
    assert [line.split()[0] for line in lines[2:2 + len(LABELS[kind])]] == LABELS[kind]
    assert "confusion matrix" in lines and lines[-1] == f"figure: {run / 'confusion.png'}"


def test_eval_prints_a_table_for_a_file_too_and_json_only_when_asked(classifier, tmp_path):
    kind, run = classifier
    data = tmp_path / "new.csv"
    data.write_text(examples(kind, rows=12), encoding="utf-8")
    status, out, err = run_cli(["eval", str(run), str(data)])
    assert status == EXIT_OK, err
    header, row = out.splitlines()
    assert header.split() == ["split", "accuracy", "loss"] and row.split()[0] == "new.csv"
    assert set(evaluated(str(run), str(data))) == {"new.csv"}  # without --report, as before


def test_the_report_of_a_regression_is_its_residuals(tmp_path):
    run = trained(REGRESSION_SPEC, tmp_path / "run")
    found = evaluated(str(run), str(HOUSING), "--report")
    report = found["report"]
    assert report["kind"] == "regression" and Path(report["figure"]) == run / "residuals.png"
    assert (run / "residuals.png").read_bytes().startswith(b"\x89PNG")
    assert not (run / "confusion.png").exists()
    status, _, err = run_cli(["predict", str(run), str(HOUSING), "-o", str(tmp_path / "predicted.csv")])
    assert status == EXIT_OK, err
    predicted = np.array([float(row[0]) for row in read_csv(tmp_path / "predicted.csv")[1:]])
    rows = read_csv(HOUSING)
    true = np.array([float(row[rows[0].index("price")]) for row in rows[1:]])
    stats = report["residuals"]
    assert report["examples"] == len(true)
    assert stats["mae"] == pytest.approx(sk.mean_absolute_error(true, predicted), rel=1e-4)
    assert stats["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(true, predicted)), rel=1e-4)
    assert stats["r2"] == pytest.approx(sk.r2_score(true, predicted), rel=1e-4, abs=1e-6)
    assert stats["mae"] == pytest.approx(found["metrics"][HOUSING.name]["mae"], rel=1e-5)
    status, out, err = run_cli(["eval", str(run), "--report"])
    assert status == EXIT_OK, err
    assert "residuals (true - predicted)" in out and out.endswith(f"figure: {run / 'residuals.png'}\n")


def test_a_linked_figure_is_refused_and_its_target_untouched(classifier, tmp_path):
    _, run = classifier
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (run / "confusion.png").unlink(missing_ok=True)
    (run / "confusion.png").symlink_to(target)
    try:
        status, _, err = run_cli(["eval", str(run), "--report"])
        assert status == EXIT_ERRORS and err.startswith("dlc: error: ") and len(err.strip().splitlines()) == 1
        assert f"`{run / 'confusion.png'}` is a symbolic link" in err
        assert target.read_text() == "precious"
    finally:
        (run / "confusion.png").unlink()


def test_a_model_of_several_labels_per_example_has_no_report(data_dir, tmp_path):
    spec = tmp_path / "multilabel.dl"
    spec.write_text(f'data "{data_dir / "multilabel.npz"}"\ndense 5 sigmoid\nloss binary_crossentropy\n'
                    "optimizer sgd\n", encoding="utf-8")
    run = trained(spec, tmp_path / "run")
    status, _, err = run_cli(["eval", str(run), "--report"])
    assert status == EXIT_ERRORS and "several labels per example" in err and len(err.strip().splitlines()) == 1
