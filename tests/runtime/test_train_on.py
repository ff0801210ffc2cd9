"""Training on from a run from the CLI: a resume that would change a run's epochs (or spec) is refused
with the way to train on instead (a new run with `init`); a run started from another resumes to
exactly the numbers of an uninterrupted one, like any run; and the shipped transfer example runs end
to end: its frozen layers are the base run's bit for bit, and it evaluates and predicts once the
base run is gone."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
from pathlib import Path

import jax
import numpy as np
import pytest
from processes import dlc_process, numbers, wait_for_steps

import dlc
from dlc.cli import main
from dlc.runtime.identity import train_on_hint

REPO = Path(__file__).resolve().parents[2]
BASE = """\
model base
data digits val=0.2 test=0.2 normalize=standard
input 64
dense 24 relu name=features
dense 16 relu name=middle
dense 10 softmax name=head
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 64
epochs 3
"""
# `features` frozen, `middle` fine-tuned from the run, a fresh head: a resume that started the
# run again from `init` (instead of the checkpoint) would change `middle` and the history.
TRANSFER = """\
model on
data digits val=0.2 test=0.2 normalize=standard
init "base"
input 64
dense 24 relu name=features trainable=false
dense 16 relu name=middle
dropout 0.2
dense 10 softmax name=new_head
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 64
epochs 20
metrics accuracy
"""


def same(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base.dl trained into `base/`, transfer.dl beside it, and transfer.dl trained without a break."""
    root = tmp_path_factory.mktemp("train_on")
    (root / "base.dl").write_text(BASE)
    (root / "transfer.dl").write_text(TRANSFER)
    assert main(["run", str(root / "base.dl"), "--out", str(root / "base"), "-q"]) == 0
    assert main(["run", str(root / "transfer.dl"), "--out", str(root / "whole"), "-q"]) == 0
    return root


# --- the refusal says how to train on -----------------------------------------------------------


def test_the_hint_names_the_run_from_the_specs_folder() -> None:
    assert train_on_hint("runs/a", "specs/x.dl") == (
        "--resume only finishes a run as it started (spec, seed, epochs); to train it further, start a new run "
        'from it: add `init "../runs/a"` to the spec and `dlc run specs/x.dl --out NEW`')
    assert 'add `init "runs/a"` to the spec and `dlc run x.dl --out NEW`' in train_on_hint("runs/a", "x.dl")
    assert '`init "/abs/run"`' in train_on_hint("/abs/run", "specs/x.dl")
    assert 'add `init "runs/a"` to the spec and `dlc run SPEC --out NEW`' in train_on_hint("runs/a", "-")
    assert """`init "q\\"uote"` to the spec and `dlc run 'my spec.dl' --out""" in train_on_hint('q"uote', "my spec.dl")


def test_resuming_with_more_epochs_is_refused_with_the_way_to_train_on(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(folder)  # as from a repository's root: the paths as the user typed them
    assert main(["run", "base.dl", "--out", "base", "-q", "--resume", "--epochs", "5"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after the data's warnings
    assert err == ("dlc: error: cannot resume `base`: epochs (3 -> 5) changed since the run started; --resume only "
                   "finishes a run as it started (spec, seed, epochs); to train it further, start a new run from "
                   'it: add `init "base"` to the spec and `dlc run base.dl --out NEW`')


def test_a_spec_with_more_epochs_is_refused_with_the_way_to_train_on(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(folder)
    more = Path("specs", "more.dl")
    more.parent.mkdir(exist_ok=True)
    more.write_text(BASE.replace("epochs 3", "epochs 5"))
    assert main(["run", str(more), "--out", "base", "-q", "--resume"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == ("dlc: error: cannot resume `base`: the spec changed since the run started: line 10: `epochs 3` "
                   "became `epochs 5`; --resume only finishes a run as it started (spec, seed, epochs); to train "
                   'it further, start a new run from it: add `init "../base"` to the spec and '
                   "`dlc run specs/more.dl --out NEW`")


def test_a_long_changed_line_is_cut_so_that_the_hint_shows(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(folder)
    long = Path("long.dl")
    long.write_text(BASE.replace("model base", "model base_" + "x" * 300))
    assert main(["run", str(long), "--out", "base", "-q", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "`model base` became `model base_xxxx" in err and "... " not in err.split("became")[0]
    assert err.endswith('add `init "base"` to the spec and `dlc run long.dl --out NEW`\n')


def test_following_the_hint_trains_on_from_the_run(folder: Path, tmp_path: Path, capsys) -> None:
    """What the hint says to do, done: the same spec with `init` added, into a new folder, starts from
    the run's weights (every layer), with 2 more epochs."""
    spec = tmp_path / "more.dl"
    spec.write_text(BASE.replace("input 64", f'init "{(folder / "base").as_posix()}"\ninput 64'))
    assert main(["run", str(spec), "--out", str(tmp_path / "more"), "-q", "--epochs", "2"]) == 0
    record = json.loads((tmp_path / "more" / "run.json").read_text())["init"]
    assert record["layers"] == ["features", "middle", "head"]
    before = dlc.load_run(folder / "base").evaluate()["loss"]
    assert dlc.load_run(tmp_path / "more").evaluate()["loss"] < before  # it went on, not back to the start


# --- a transfer run resumes exactly ---------------------------------------------------------------


def test_a_transfer_run_killed_with_sigkill_resumes_to_the_same_numbers(folder: Path) -> None:
    run = folder / "killed"
    process = dlc_process("run", str(folder / "transfer.dl"), "--out", str(run), "-q", "--checkpoint-interval", "0")
    wait_for_steps(run, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert main(["run", str(folder / "transfer.dl"), "--out", str(run), "-q", "--resume"]) == 0
    whole = folder / "whole"
    assert numbers(run) == numbers(whole)
    assert json.loads((run / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    resumed, uninterrupted = dlc.load_run(run).variables, dlc.load_run(whole).variables
    assert same(resumed, uninterrupted)
    base = dlc.load_run(folder / "base").variables["params"]
    assert same(resumed["params"]["features"], base["features"])  # frozen: still the base run's
    assert not same(resumed["params"]["middle"], base["middle"])  # fine-tuned from it


def test_a_transfer_run_stopped_with_ctrl_c_resumes_exactly(folder: Path) -> None:
    run = folder / "interrupted"
    process = dlc_process("run", str(folder / "transfer.dl"), "--out", str(run), "-q", "--checkpoint-interval", "0")
    wait_for_steps(run, 1, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert f"--out {run} --resume" in err
    assert main(["run", str(folder / "transfer.dl"), "--out", str(run), "-q", "--resume"]) == 0
    assert numbers(run) == numbers(folder / "whole")
    assert same(dlc.load_run(run).variables, dlc.load_run(folder / "whole").variables)


# --- the shipped example, end to end ---------------------------------------------------------------


def test_the_shipped_transfer_example_runs_and_outlives_its_base_run(tmp_path: Path, capsys) -> None:
    """`dlc run specs/transfer/base.dl --out runs/digits_0to4`, then the transfer spec, from a copy of
    the repository's layout (2 epochs each): the frozen layers are the base run's bit for bit; with
    the base run deleted, `dlc eval` and `dlc predict` of the new run work."""
    shutil.copytree(REPO / "specs" / "transfer", tmp_path / "specs" / "transfer")
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("*.csv"))
    base, new = tmp_path / "runs" / "digits_0to4", tmp_path / "runs" / "digits_5to9_transfer"
    specs = tmp_path / "specs" / "transfer"
    assert main(["run", str(specs / "base.dl"), "--out", str(base), "-q", "--epochs", "2"]) == 0
    assert main(["run", str(specs / "transfer.dl"), "--out", str(new), "-q", "--epochs", "2"]) == 0
    capsys.readouterr()
    trained, started = dlc.load_run(new).variables["params"], dlc.load_run(base).variables["params"]
    for layer in ("conv1", "conv2"):
        assert same(trained[layer], started[layer]), layer
    assert "head_5to9" in trained and "head_0to4" not in trained
    assert json.loads((new / "run.json").read_text())["init"]["layers"] == ["conv1", "conv2"]
    expected = dlc.load_run(new).predict(np.load(tmp_path / "data" / "digits_5to9_10.npz")["x"])

    shutil.rmtree(base)
    assert main(["eval", str(new), "--format", "json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"train", "test"} and 0 <= metrics["test"]["accuracy"] <= 1
    assert main(["eval", str(new), str(tmp_path / "data" / "digits_5to9_10.npz")]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["predict", str(new), str(tmp_path / "data" / "digits_5to9_10.npz")]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 + 50
    labels = [int(float(row[0])) for row in rows[1:]]
    assert set(labels) <= set(range(5, 10))
    assert labels == [5 + int(i) for i in np.argmax(expected, axis=1)]
