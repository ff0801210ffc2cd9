"""Runs you can trust: a run killed with SIGKILL or stopped with Ctrl-C resumes to exactly the
history and metrics of an uninterrupted run; a diverging run stops and says why; a model that
cannot fit in memory is refused before anything is allocated. These drive real `dlc run`
processes where a signal is involved."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import pytest
from processes import dlc_process, numbers, wait_for_steps

from dlc.cli import main

SPEC = """\
model resumable
data digits val=0.2 test=0.2 normalize=standard
dense 16 relu
dropout 0.2
dense 10 softmax
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 64
epochs 12
early_stop 20
metrics accuracy
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "resumable.dl"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def uninterrupted(spec, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "whole"
    assert main(["run", str(spec), "--out", str(run), "-q"]) == 0
    return run


def test_a_run_killed_with_sigkill_resumes_to_the_same_numbers(spec, uninterrupted, tmp_path):
    run = tmp_path / "killed"
    process = dlc_process("run", str(spec), "--out", str(run), "-q", "--checkpoint-interval", "0")
    wait_for_steps(run, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    resumed = dlc_process("run", str(spec), "--out", str(run), "-q", "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "Traceback" not in err
    assert numbers(run) == numbers(uninterrupted)
    assert json.loads((run / "metrics.json").read_text()) == json.loads((uninterrupted / "metrics.json").read_text())


def test_ctrl_c_stops_at_a_safe_point_and_the_run_resumes_exactly(spec, uninterrupted, tmp_path):
    run = tmp_path / "interrupted"
    process = dlc_process("run", str(spec), "--out", str(run), "-q", "--checkpoint-interval", "0")
    wait_for_steps(run, 1, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert f"--out {run} --resume" in err
    assert main(["run", str(spec), "--out", str(run), "-q", "--resume"]) == 0
    assert numbers(run) == numbers(uninterrupted)


def test_a_resume_with_a_changed_spec_is_refused_saying_what_changed(spec, uninterrupted, tmp_path, capsys):
    changed = tmp_path / "changed.dl"
    changed.write_text(SPEC.replace("lr=1e-3", "lr=3e-3"))
    assert main(["run", str(changed), "--out", str(uninterrupted), "-q", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "the spec changed" in err and "lr=3e-3" in err


def test_a_diverging_run_stops_at_the_first_non_finite_loss(tmp_path, capsys):
    spec = tmp_path / "diverge.dl"
    spec.write_text(SPEC.replace("optimizer adam lr=1e-3", "optimizer sgd lr=1e9"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "diverged at epoch 1" in err and "lower the learning rate" in err and "clip=" in err
    assert "Traceback" not in err
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert rows[-1]["loss"] == "nan"


def test_a_loss_that_grows_by_orders_of_magnitude_stops_like_divergence(tmp_path, capsys):
    """`lr=10` with sgd sends iris's loss from about 1 to tens of thousands in the first epoch, all
    finite, then the network dies at chance: stopped at epoch 1 with the divergence advice."""
    spec = tmp_path / "grows.dl"
    spec.write_text("data iris val=0.2\ninput 4\ndense 16 relu\ndense 3 softmax\n"
                    "loss categorical_crossentropy\noptimizer sgd lr=10\nepochs 5\nseed 1\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "diverged at epoch 1: `loss` grew from 1." in err and "before training to" in err
    assert "lower the learning rate (`lr=10` now)" in err and "last finite" not in err
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert len(rows) == 1 and float(rows[0]["loss"]) > 1000


def test_a_model_too_big_for_memory_is_refused_with_the_estimate(tmp_path, capsys):
    spec = tmp_path / "huge.dl"
    spec.write_text(SPEC.replace("dense 16 relu", "dense 2000000000 relu"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "needs about" in err and "GiB" in err and "parameters" in err
    assert not (tmp_path / "run").exists()  # the folder made for the run is removed again


def test_repeat_check_finds_the_same_numbers(spec, tmp_path, capsys):
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q", "--epochs", "2", "--repeat-check"]) == 0
    assert "identical history (2 epochs) and parameters" in capsys.readouterr().out
