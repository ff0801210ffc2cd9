"""`loss ... class_weight=balanced`: each training example weighted n / (classes x examples of its
class), as Keras and scikit-learn's "balanced"; the reported training loss is the weighted one
(what is minimized, as Keras reports it), the validation loss the plain one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

import dlc
from dlc.compiler.check import check_text
from dlc.runtime import measures

RNG = np.random.default_rng(0)


def test_weights_are_sklearns_balanced():
    y = np.repeat([0, 1, 2], [50, 30, 7])
    program = dlc.compile("input 4\ndense 3 softmax\nloss categorical_crossentropy class_weight=balanced\n"
                          "optimizer adam").ir
    want = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert measures.class_weights(program, y) == pytest.approx(tuple(want), abs=1e-15)
    binary = dlc.compile("input 4\ndense 1 sigmoid\nloss binary_crossentropy class_weight=balanced\n"
                         "optimizer adam").ir
    labels = (np.arange(40) < 10).astype(np.float32).reshape(-1, 1)
    assert measures.class_weights(binary, labels) == pytest.approx(
        tuple(compute_class_weight("balanced", classes=np.arange(2), y=labels[:, 0].astype(int))), abs=1e-15)
    assert measures.class_weights(dlc.compile("input 4\ndense 3 softmax\nloss categorical_crossentropy\n"
                                              "optimizer adam").ir, y) is None


def test_a_class_missing_from_training_gets_no_weight():
    program = dlc.compile("input 4\ndense 3 softmax\nloss categorical_crossentropy class_weight=balanced\n"
                          "optimizer adam").ir
    assert measures.class_weights(program, np.array([0, 0, 0, 1])) == (4 / 9, 4 / 3, 0.0)


FROZEN = "dense 1 sigmoid trainable=false\nloss binary_crossentropy{weight}\noptimizer sgd lr=0.1\nbatch 8\n"


def test_training_loss_is_weighted_and_validation_loss_is_not():
    """A frozen model (the weights stay as they start): the epoch's loss is the weighted mean of the
    per-example losses, the validation loss on the same examples their plain mean."""
    x = RNG.normal(size=(60, 3)).astype(np.float32)
    y = (np.arange(60) < 12).astype(np.float32).reshape(-1, 1)  # 12 positives, 48 negatives
    program = dlc.compile(FROZEN.format(weight=" class_weight=balanced"))
    history = program.fit(x, y, validation_data=(x, y), epochs=1)
    session = program.trained
    p = session.trainer.predict(session.state.params, session.state.batch_stats, x)[:, 0].astype(np.float64)
    losses = -(y[:, 0] * np.log(p) + (1 - y[:, 0]) * np.log(1 - p))
    weights = np.where(y[:, 0] > 0.5, 60 / (2 * 12), 60 / (2 * 48))
    assert session.program.class_weights == (60 / 96, 60 / 24)
    assert history[0]["loss"] == pytest.approx(np.mean(weights * losses), rel=1e-5)
    assert history[0]["val_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert abs(history[0]["loss"] - history[0]["val_loss"]) > 1e-3  # the weights matter here
    plain = dlc.compile(FROZEN.format(weight="")).fit(x, y, validation_data=(x, y), epochs=1)
    assert plain[0]["loss"] == pytest.approx(plain[0]["val_loss"], rel=1e-5)


def test_weights_move_training_toward_the_rare_class():
    """On data of 10% positives, a weighted model predicts positives far more often."""
    x = RNG.normal(size=(400, 2)).astype(np.float32)
    y = (x[:, 0] + 0.8 * RNG.normal(size=400) > 1.3).astype(np.float32).reshape(-1, 1)
    spec = "dense 1 sigmoid\nloss binary_crossentropy{weight}\noptimizer adam lr=0.05\nbatch 50\nepochs 30\n"
    rates = []
    for weight in ("", " class_weight=balanced"):
        program = dlc.compile(spec.format(weight=weight))
        program.fit(x, y)
        rates.append(float(np.mean(program.predict(x)[:, 0] > 0.5)))
    assert rates[1] > 1.5 * rates[0]


def test_class_weight_is_for_one_class_per_example():
    for text, code in (("input 4\ndense 3 sigmoid\nloss binary_crossentropy class_weight=balanced", "E510"),
                       ("input 4\ndense 1\nloss mae class_weight=balanced", "E202")):
        _, diagnostics = check_text(text + "\noptimizer adam")
        assert [(d.code, d.span.line) for d in diagnostics if d.is_error] == [(code, 3)]


def test_a_csv_with_a_categorical_column_trains_with_balanced_weights(tmp_path):
    """As contract-v2 valid/tab_categorical.dl: the weights are those of the training split's labels."""
    colours = np.array(["red", "green", "blue"])[RNG.integers(0, 3, size=60)]
    label = np.where(np.arange(60) < 45, "common", "rare")
    rows = [f"{RNG.normal():.4f},{colour},{name}" for colour, name in zip(colours, label, strict=True)]
    (tmp_path / "t.csv").write_text("size,colour,label\n" + "\n".join(rows) + "\n")
    program = dlc.compile('data "t.csv" target="label" val=0.25\ndense 2 softmax\n'
                          "loss categorical_crossentropy class_weight=balanced\noptimizer adam\nmetrics f1",
                          base_dir=tmp_path)
    history = program.fit(epochs=1)
    session = program.trained
    train_y = session.prepared.train.y
    want = compute_class_weight("balanced", classes=np.arange(2), y=train_y)
    assert session.program.class_weights == pytest.approx(tuple(want), abs=1e-15)
    assert "val_f1" in history[0]
