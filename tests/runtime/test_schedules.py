"""Schedules `step` and `plateau`, and the `lr` column every history has: the rate of the epoch's
last update (the schedule's factor times the rate in the optimizer state, which `plateau` lowers
between epochs as the monitored quantity stalls, as Keras's `ReduceLROnPlateau` does)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlc
from dlc.compiler import ir
from dlc.runtime import measures
from dlc.runtime.stopping import Plateau, Progress

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = RNG.normal(size=(40, 1)).astype(np.float32)
BASE = "dense 4 relu\ndense 1\nloss mse\noptimizer sgd lr=0.05\nbatch 10\nepochs {epochs}\n{schedule}\n"


def rates(schedule: str, epochs: int, **fit) -> list[float]:
    program = dlc.compile(BASE.format(epochs=epochs, schedule=schedule))
    return [row["lr"] for row in program.fit(X, Y, **fit)]


def test_every_history_has_the_learning_rate():
    assert rates("", 3) == [0.05, 0.05, 0.05]


def test_step_multiplies_the_rate_every_so_many_steps():
    """4 steps an epoch, every 6: the last update of epoch e is update 4e - 1."""
    got = rates("schedule step every=6 factor=0.5", 5)
    assert got == pytest.approx([0.05 * 0.5 ** ((4 * e - 1) // 6) for e in range(1, 6)], rel=1e-6)


def test_plateau_lowers_the_rate_after_patience_epochs_without_improvement():
    """No change counts at `min_delta=10`: the count reaches patience 2 after epochs 3 and 5."""
    program = dlc.compile(BASE.format(epochs=6, schedule="schedule plateau factor=0.5 patience=2 min_delta=10"))
    history = program.fit(X, Y)
    assert [row["lr"] for row in history] == pytest.approx([0.05, 0.05, 0.05, 0.025, 0.025, 0.0125], rel=1e-6)
    # The rate lives in the optimizer state: the next update uses it, and a resumed run restores it.
    assert float(measures.rate(program.trained.state.opt_state)) == pytest.approx(0.0125, rel=1e-6)


def test_plateau_keeps_its_rate_while_the_loss_improves():
    assert rates("schedule plateau factor=0.5 patience=1", 4) == [0.05] * 4


def _plateau(mode: str, patience: int = 1) -> Plateau:
    rule = ir.EarlyStop(patience=5, monitor="val_accuracy", min_delta=0.0, restore_best=True, mode=mode)
    return Plateau({"factor": 0.5, "patience": patience, "min_delta": 0.0}, rule, dict(Plateau.START))


def test_plateau_watches_the_early_stop_monitor_in_its_direction():
    plateau = _plateau("max")
    assert [plateau.update({"val_accuracy": v, "loss": 1.0}) for v in (0.5, 0.6, 0.6, 0.7, 0.65)] == \
        [False, False, True, False, True]


def test_plateau_count_goes_into_checkpoints():
    progress = Progress(epoch=3, plateau={"best": 0.25, "waited": 2})
    assert Progress.from_json(progress.to_json()).plateau == {"best": 0.25, "waited": 2}
    old = {k: v for k, v in progress.to_json().items() if k != "plateau"}  # saved before plateaus were
    assert Progress.from_json(old).plateau == Plateau.START


def test_the_rate_column_reads_as_float32_shortest():
    assert measures.epoch_rate(np.float32(1e-3), np.float32(1.0)) == 0.001
    assert math.isclose(measures.epoch_rate(np.float32(0.1), np.float32(0.5)), 0.05)


def test_a_resumed_plateau_run_goes_on_as_the_uninterrupted_one(tmp_path):
    """Stopped after epoch 3 (its rate just lowered, its count in the checkpoint), resumed to 6."""
    from dlc.runtime.stopping import Interrupted

    text = BASE.format(epochs=6, schedule="schedule plateau factor=0.5 patience=2 min_delta=10")
    whole = [{k: v for k, v in row.items() if k != "epoch_time"} for row in dlc.compile(text).fit(X, Y)]
    program, done = dlc.compile(text), []
    with pytest.raises(Interrupted):
        program.fit(X, Y, checkpoint_dir=tmp_path, checkpoint_interval=0.0,
                    on_epoch=lambda epoch, logs: done.append(epoch), should_stop=lambda: len(done) >= 3)
    resumed = dlc.compile(text).fit(X, Y, checkpoint_dir=tmp_path, resume=True)
    assert [{k: v for k, v in row.items() if k != "epoch_time"} for row in resumed] == whole
