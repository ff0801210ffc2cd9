"""`dlc eval` and `dlc predict` on new CSV files, as the language promises: columns are matched by
header name, not by position (extra columns are ignored, a missing one is named), predict never
reads labels, a bad label is named by file, row and column, and a run folder needs none of its
training data to evaluate or predict on new data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli_run import read_csv, run_cli

from dlc.cli import EXIT_ERRORS, EXIT_OK

SPEC = ('data "train.csv" target="t" val=0.25\ndense 2 softmax\nloss categorical_crossentropy\noptimizer sgd\n'
        "epochs 2\nmetrics accuracy\n")


def table(columns: list[str], rows: int = 24, **cells) -> str:
    """A CSV of `rows` examples; `cells` replace a column's values by row, e.g. t={2: "cow"}."""
    values = {"a": lambda i: i % 2, "b": lambda i: (i * 7 % 11) * 10, "c": lambda i: i * 3 % 5 - 2,
              "t": lambda i: "dog" if i % 2 else "cat", "id": lambda i: f"x{i}"}
    lines = [",".join(columns)]
    for i in range(rows):
        lines.append(",".join(str(cells.get(c, {}).get(i, values[c](i))) for c in columns))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder of a classifier trained on the columns a, b, c of `train.csv`, labels `t`."""
    folder = tmp_path_factory.mktemp("columns")
    (folder / "train.csv").write_text(table(["a", "b", "c", "t"]), encoding="utf-8")
    (folder / "spec.dl").write_text(SPEC, encoding="utf-8")
    status, _, err = run_cli(["run", str(folder / "spec.dl"), "-q", "--out", str(folder / "run")])
    assert status == EXIT_OK, err
    return folder / "run"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def predicted(run: Path, data: Path) -> list[list[str]]:
    status, _, err = run_cli(["predict", str(run), str(data), "-o", str(data.with_suffix(".out.csv"))])
    assert status == EXIT_OK, err
    return read_csv(data.with_suffix(".out.csv"))


def evaluated(run: Path, data: Path) -> dict:
    status, out, err = run_cli(["eval", str(run), str(data), "--format", "json"])
    assert status == EXIT_OK, err
    return json.loads(out)[data.name]


def refused(args: list[str]) -> str:
    """The one `dlc: error:` line of a command that exits 1."""
    status, _, err = run_cli(args)
    lines = err.strip().splitlines()
    assert status == EXIT_ERRORS and len(lines) == 1 and lines[0].startswith("dlc: error: "), err
    return lines[0]


def test_the_run_folder_records_the_feature_columns_and_the_facts_of_its_data(trained):
    assert json.loads((trained / "preprocessing.json").read_text(encoding="utf-8"))["columns"] == ["a", "b", "c"]
    data = json.loads((trained / "run.json").read_text(encoding="utf-8"))["data"]
    assert (data["source"], data["target"], data["features"]) == ("csv", "t", [3])


def test_columns_in_another_order_with_extra_ones_give_the_same_answers(trained, tmp_path):
    same = write(tmp_path, "same.csv", table(["a", "b", "c", "t"]))
    shuffled = write(tmp_path, "shuffled.csv", table(["c", "id", "t", "b", "a"]))
    assert predicted(trained, shuffled) == predicted(trained, same)
    assert evaluated(trained, shuffled) == evaluated(trained, same)


def test_predict_never_reads_the_label_column(trained, tmp_path):
    expected = predicted(trained, write(tmp_path, "labelled.csv", table(["a", "b", "c", "t"])))
    blank = write(tmp_path, "blank.csv", table(["a", "b", "c", "t"], t={i: "" for i in range(24)}))
    unlabelled = write(tmp_path, "unlabelled.csv", table(["a", "b", "c"]))
    assert predicted(trained, blank) == predicted(trained, unlabelled) == expected


def test_a_missing_feature_column_is_named_with_its_file(trained, tmp_path):
    path = write(tmp_path, "new.csv", table(["a", "c", "t"]))
    for verb in ("predict", "eval"):
        assert "`new.csv` has no column `b`, which the model was trained on" in refused([verb, str(trained), str(path)])


def test_eval_names_a_missing_target_column_as_the_target(trained, tmp_path):
    path = write(tmp_path, "new.csv", table(["a", "b", "c", "id"]))
    assert "`new.csv` has no target column `t`" in refused(["eval", str(trained), str(path)])


def test_eval_names_the_row_and_column_of_a_label_the_model_does_not_know(trained, tmp_path):
    header, first, rest = table(["a", "b", "c", "t"], t={2: "cow"}).split("\n", 2)
    path = write(tmp_path, "new.csv", f"{header}\n{first}\n\n{rest}")  # a blank line: the file's row 5 is example 2
    assert refused(["eval", str(trained), str(path)]).endswith(
        "`new.csv` row 5, column `t` is `cow`, which is not one of the model's 2 classes (`cat`, `dog`)")


def test_a_run_folder_needs_no_training_data_for_new_data(trained, tmp_path):
    expected = predicted(trained, write(tmp_path, "before.csv", table(["a", "b", "c"])))
    training = trained.parent / "train.csv"
    kept = Path(shutil.move(training, tmp_path / "kept.csv"))
    try:
        assert predicted(trained, write(tmp_path, "after.csv", table(["a", "b", "c"]))) == expected
        assert set(evaluated(trained, write(tmp_path, "new.csv", table(["a", "b", "c", "t"])))) == {"loss", "accuracy"}
        message = refused(["eval", str(trained)])
        assert "reads the data it trained on" in message and "train.csv" in message and "edited" not in message
    finally:
        shutil.move(kept, training)
