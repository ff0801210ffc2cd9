"""Damaged run folders and bad inputs through `dlc eval` and `dlc predict`: a folder that is not
there, files missing or corrupted, a spec edited after the run, a checkpoint of another model, and
data files that do not fit the model. Each gets one `dlc: error:` line (after the diagnostics, for
an edited spec) and its exit status, never a traceback; nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_no_crash, assert_refused, dlc
from test_hostile_data import Trap, archive, npy, objects

from dlc.cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE

SPEC = 'data "d.csv" target="t" val=0.25\ndense 2 softmax\nloss categorical_crossentropy\noptimizer sgd\nepochs 1\n'


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder of a two-feature classifier, trained for one epoch."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "d.csv").write_text("a,b,t\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(16)), encoding="utf-8")
    (folder / "spec.dl").write_text(SPEC, encoding="utf-8")
    answer = dlc("run", str(folder / "spec.dl"), "-q", "--out", str(folder / "run"))
    assert answer.status == EXIT_OK, answer.err
    return folder / "run"


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A copy of the trained run folder for a test to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.fixture
def examples(tmp_path) -> Path:
    path = tmp_path / "examples.npz"
    np.savez(path, x=np.ones((3, 2)))
    return path


def both(run: Path, examples: Path) -> list:
    return [dlc("eval", str(run)), dlc("predict", str(run), str(examples))]


def test_the_trained_run_evaluates_and_predicts(trained, examples):
    assert [answer.status for answer in both(trained, examples)] == [EXIT_OK, EXIT_OK]


def test_a_missing_folder_or_a_file_is_no_run(tmp_path, examples):
    (tmp_path / "file").write_text("not a folder")
    for where in (tmp_path / "nowhere", tmp_path / "file"):
        for answer in both(where, examples):
            assert_refused(answer, "no run folder")


def remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


DAMAGE = {
    "no run.json": (lambda run: remove(run / "run.json"), "has no `run.json`"),
    "no preprocessing.json": (lambda run: remove(run / "preprocessing.json"), "has no `preprocessing.json`"),
    "no spec.dl": (lambda run: remove(run / "spec.dl"), "cannot read the spec"),
    "no checkpoint": (lambda run: remove(run / "checkpoint"), "cannot restore the checkpoint"),
    "run.json not JSON": (lambda run: (run / "run.json").write_text("{not json"), "cannot read"),
    "run.json a list": (lambda run: (run / "run.json").write_text("[1, 2]"), "does not hold a JSON object"),
    "run.json a folder": (lambda run: (remove(run / "run.json"), (run / "run.json").mkdir()), "cannot read"),
    "preprocessing.json binary": (lambda run: (run / "preprocessing.json").write_bytes(b"\xff\x00"), "cannot read"),
    "spec.dl not UTF-8": (lambda run: (run / "spec.dl").write_bytes(b"input \xff"), "cannot read the spec"),
    "spec.dl of a wider model": (lambda run: (run / "spec.dl").write_text(SPEC.replace("dense 2", "dense 8\ndense 2")),
                                 "cannot restore the checkpoint"),
    "checkpoint files garbage": (lambda run: [f.write_bytes(b"garbage") for f in (run / "checkpoint").rglob("*")
                                              if f.is_file()], "cannot restore the checkpoint"),
    "checkpoint a file": (lambda run: (remove(run / "checkpoint"), (run / "checkpoint").write_text("x")),
                          "cannot restore the checkpoint"),
    "checkpoint a pickle": (lambda run: (remove(run / "checkpoint"), (run / "checkpoint").mkdir(),
                                         (run / "checkpoint" / "checkpoint").write_bytes(pickle.dumps(Trap(run / "x")))),
                            "cannot restore the checkpoint"),
}


@pytest.mark.parametrize(("damage", "message"), DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_run_folder_is_one_line(run_copy, examples, damage, message):
    damage(run_copy)
    for answer in both(run_copy, examples):
        assert_refused(answer, message)
    assert not (run_copy / "x").exists()


def test_a_spec_edited_into_errors_shows_them_then_one_line(run_copy, examples):
    (run_copy / "spec.dl").write_text(SPEC.replace("dense 2", "dense 0"), encoding="utf-8")
    for answer in both(run_copy, examples):
        assert_refused(answer, "has errors: was spec.dl edited after the run?")
        assert "error[E301]: `dense` units must be ≥ 1, got 0" in answer.err


def edit_json(name: str, **fields) -> callable:
    def edit(run: Path) -> None:
        path = run / name
        path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")) | fields), encoding="utf-8")
    return edit


# The fields of run.json and preprocessing.json are checked before they are used.
UNCHECKED_FIELDS = {
    "seed not a number": edit_json("run.json", seed="abc"),
    "arrays not a record": edit_json("run.json", arrays={"x": 1}),
    "spec_dir not a path": edit_json("run.json", spec_dir=5),
    "normalization not a record": edit_json("preprocessing.json", normalization=5),
    "normalization without a kind": edit_json("preprocessing.json", normalization={"shift": []}),
    "an infinite scale": edit_json("preprocessing.json", normalization={"kind": "standard", "shift": [0, 0],
                                                                        "scale": [float("inf"), 1]}),
    "a scale of 0": edit_json("preprocessing.json", normalization={"kind": "minmax", "shift": [0, 0], "scale": [0, 1]}),
    "columns not names": edit_json("preprocessing.json", columns=[1, 2]),
    "columns named twice": edit_json("preprocessing.json", columns=["a", "a"]),
    "fewer columns than inputs": edit_json("preprocessing.json", columns=["a"]),
    "more labels than the model has classes": edit_json("preprocessing.json", labels=[0, 1, 2, 3, 4, 5]),
    "no labels for a classifier": edit_json("preprocessing.json", labels=None),
    "data facts not a record": edit_json("run.json", data={"x": 1}),
    "data facts of the wrong type": lambda run: edit_json("run.json", data=json.loads(
        (run / "run.json").read_text(encoding="utf-8"))["data"] | {"features": "2"})(run),
}


@pytest.mark.parametrize("damage", UNCHECKED_FIELDS.values(), ids=UNCHECKED_FIELDS.keys())
def test_a_run_record_with_fields_of_the_wrong_type_is_one_line_naming_its_file(run_copy, examples, damage):
    damage(run_copy)
    for answer in both(run_copy, examples):
        assert_refused(answer, ".json")


def test_a_run_folder_of_an_older_dlc_still_loads(run_copy, examples):
    """Before feature columns and data facts were recorded: features by position, the data file read."""
    for name, field in (("preprocessing.json", "columns"), ("run.json", "data")):
        record = json.loads((run_copy / name).read_text(encoding="utf-8"))
        del record[field]
        (run_copy / name).write_text(json.dumps(record), encoding="utf-8")
    assert [answer.status for answer in both(run_copy, examples)] == [EXIT_OK, EXIT_OK]


# --- what eval and predict are given ------------------------------------------------------------


def test_predict_refuses_inputs_it_cannot_use(trained, tmp_path):
    trap = tmp_path / "unpickled"
    inputs = {
        "missing.csv": (None, "not found"),
        "folder.csv": ("folder", "is not a file"),
        "text.npz": (b"a,b\n1,2\n", "is not an NPZ archive"),
        "pickle.npz": (pickle.dumps({"x": Trap(trap)}), "is not an NPZ archive"),
        "objects.npz": (archive(x=npy(objects(trap))), "holds Python objects, which are never loaded"),
        "wide.npz": (archive(x=npy(np.ones((3, 7)))), "examples in `wide.npz` have 7 values but the model takes 2"),
        "nan.csv": (b"a,b\n1,nan\n", "row 2, column `b`: the cell is missing (`nan`)"),
        "table.xlsx": (b"PK", "unsupported data file"),
    }
    for name, (content, message) in inputs.items():
        path = tmp_path / name
        if content == "folder":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        assert_refused(dlc("predict", str(trained), str(path)), message)
    assert not trap.exists()


def test_predict_into_a_missing_folder_is_a_usage_error(trained, examples, tmp_path):
    assert_refused(dlc("predict", str(trained), str(examples), "-o", str(tmp_path / "no" / "p.csv")),
                   "cannot write", EXIT_USAGE)


def test_eval_needs_labels_it_knows(trained, tmp_path):
    (tmp_path / "unlabelled.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "unknown_class.csv").write_text("a,b,t\n1,2,7\n", encoding="utf-8")
    assert_refused(dlc("eval", str(trained), str(tmp_path / "unlabelled.csv")), "has no target column `t`")
    assert_refused(dlc("eval", str(trained), str(tmp_path / "unlabelled.csv"), "--target", "label"),
                   "`unlabelled.csv` has no target column `label`")
    assert_refused(dlc("eval", str(trained), str(tmp_path / "unknown_class.csv")), "which is not one of the model's")


def test_a_real_process_prints_no_traceback_from_any_thread(run_copy):
    """Orbax restores in background threads; their failures must not print past `dlc`'s line."""
    DAMAGE["checkpoint files garbage"][0](run_copy)
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "eval", str(run_copy)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == EXIT_ERRORS
    assert done.stderr.splitlines()[-1].startswith("dlc: error: cannot restore the checkpoint")
    assert_no_crash(type("Answer", (), {"out": done.stdout, "err": done.stderr})())
