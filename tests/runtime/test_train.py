"""Training: the loss goes down, a seed fixes every number, early stopping ends with the weights
it promises, padding of the last batch never counts, batch statistics and dropout behave as in
Keras (training mode while fitting, inference mode in evaluation).

Programs with the same spec share one compiled epoch (JAX's compilation cache), so most tests
reuse the classifier below.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import dlc
from dlc.compiler import ir
from dlc.runtime import train
from dlc.runtime.stopping import EarlyStopping
from dlc.runtime.train import init_state

CLASSIFIER = """dense 16 relu
dropout 0.2
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=0.05
batch 8
epochs 3
metrics accuracy
"""


def blobs(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """n examples of 4 features (centred on `shift`), labelled by which of the first three is largest."""
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x + shift, np.argmax(x[:, :3], axis=1)


TRAIN, VAL = blobs(48, seed=0), blobs(16, seed=1)


def fitted(spec: str, data=TRAIN, **fit_options) -> dlc.Program:
    program = dlc.compile(spec)
    program.fit(*data, **fit_options)
    return program


@pytest.fixture(scope="module")
def classifier() -> dlc.Program:
    return fitted(CLASSIFIER, validation_data=VAL)


def columns(history: list[dict]) -> dict[str, list[float]]:
    """The history's numbers that a seed determines: all but the wall time."""
    return {k: [row[k] for row in history] for k in history[0] if k != "epoch_time"}


def test_history_has_a_row_per_epoch_with_training_and_validation_columns(classifier):
    history = classifier.trained.history
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"}


def test_loss_decreases(classifier):
    losses = columns(classifier.trained.history)["loss"]
    assert losses[-1] < losses[0]


def test_same_seed_gives_identical_history_and_another_seed_does_not(classifier):
    again = fitted(CLASSIFIER, validation_data=VAL)
    other = fitted(CLASSIFIER, validation_data=VAL, seed=1)
    assert columns(again.trained.history) == columns(classifier.trained.history)
    assert columns(other.trained.history)["loss"] != columns(classifier.trained.history)["loss"]


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_stops_and_ends_with_the_weights_it_promises(restore_best):
    """No epoch improves by 100, so epoch 1 stays the best and patience 1 stops after epoch 2."""
    program = fitted(CLASSIFIER + f"early_stop 1 min_delta=100 restore_best={str(restore_best).lower()}\n",
                     validation_data=VAL, epochs=5)
    result = program.trained.result
    assert (len(result.history), result.stopped_early, result.best_epoch) == (2, True, 1)
    first, last = (row["val_loss"] for row in result.history)
    assert abs(first - last) > 1e-3  # else the test could not tell the two apart
    assert program.evaluate(*VAL)["loss"] == pytest.approx(first if restore_best else last, abs=1e-6)


def test_early_stopping_waits_patience_epochs_for_an_improvement():
    stopper = EarlyStopping(ir.EarlyStop(patience=2, monitor="val_loss", min_delta=0.0, restore_best=True,
                                         mode="min"))
    decisions = [stopper.update(epoch, {"val_loss": value})
                 for epoch, value in enumerate([1.0, 0.5, 0.6, 0.4, 0.45, 0.4], start=1)]
    assert decisions == [(True, False), (True, False), (False, False), (True, False), (False, False), (False, True)]
    assert stopper.best_epoch == 4


def test_early_stopping_on_a_higher_is_better_metric_counts_min_delta():
    stopper = EarlyStopping(ir.EarlyStop(patience=1, monitor="val_accuracy", min_delta=0.05, restore_best=True,
                                         mode="max"))
    decisions = [stopper.update(epoch, {"val_accuracy": value})
                 for epoch, value in enumerate([0.5, 0.6, 0.62], start=1)]
    assert decisions == [(True, False), (True, False), (False, True)]
    assert stopper.best_epoch == 2


def test_padded_last_batches_never_count(monkeypatch):
    """10 examples in batches of 4 (and evaluation chunks of 4): the last of each has 2 padding
    rows. A learning rate of 1e-12 leaves the weights as they were, so the epoch's mean training
    loss, the evaluation loss and the loss of the unpadded arrays must all agree."""
    monkeypatch.setattr(train, "EVAL_CHUNK", 4)
    x, y = blobs(10, seed=2)
    program = fitted("dense 3 softmax\nloss categorical_crossentropy\noptimizer sgd lr=1e-12\nbatch 4\nepochs 1\n"
                     "metrics accuracy\n", data=(x, y))
    session = program.trained
    lowered = session.trainer.lowered
    out = lowered.module.apply({"params": session.state.params}, x, logits=True)
    unpadded = float(np.mean(lowered.loss(out, y)))
    evaluated = program.evaluate(x, y)
    assert session.history[0]["loss"] == pytest.approx(unpadded, rel=1e-6)
    assert evaluated["loss"] == pytest.approx(unpadded, rel=1e-6)
    assert evaluated["accuracy"] == pytest.approx(np.mean(np.argmax(out, axis=1) == y))


def test_batchnorm_running_statistics_are_learned_and_used_in_evaluation():
    x, y = blobs(32, seed=3, shift=3.0)  # features far from mean 0, variance 1
    program = fitted("dense 8\nbatchnorm momentum=0.5\nactivation relu\ndense 3 softmax\n"
                     "loss categorical_crossentropy\noptimizer adam lr=0.01\nbatch 8\nepochs 2\n", data=(x, y))
    session = program.trained
    initial = init_state(session.trainer, session.program.input_shape, session.program.seed).batch_stats
    trained = session.state.batch_stats
    for before, after in zip(jax.tree.leaves(initial), jax.tree.leaves(trained), strict=True):
        assert np.abs(np.asarray(after) - np.asarray(before)).max() > 0.1

    def predict(stats, rows):
        return session.trainer.predict(session.state.params, stats, rows)

    assert not np.allclose(predict(trained, x), predict(initial, x), atol=1e-3)
    # Running averages, not the statistics of the batch: each example's output is its own.
    np.testing.assert_allclose(predict(trained, x[:3]), predict(trained, x)[:3], rtol=1e-6)


def test_dropout_is_on_in_training_and_off_in_evaluation(classifier):
    session = classifier.trained
    state, trainer = session.state, session.trainer
    x, y = VAL
    first, second = (trainer.forward(state.params, state.batch_stats, x, True, jax.random.key(k))[0] for k in (1, 2))
    assert not np.allclose(first, second)

    out = trainer.lowered.module.apply({"params": state.params}, x, logits=True)  # inference mode
    evaluated = classifier.evaluate(x, y)
    assert evaluated == classifier.evaluate(x, y)
    assert evaluated["loss"] == pytest.approx(float(np.mean(trainer.lowered.loss(out, y))), rel=1e-6)


def test_model_without_parameters_fits():
    x = np.random.default_rng(4).normal(size=(10, 3)).astype(np.float32)
    history = fitted("activation sigmoid\nloss mse\noptimizer sgd\nepochs 2\n", data=(x, x)).trained.history
    assert history[0]["loss"] == pytest.approx(history[1]["loss"], rel=1e-6)  # nothing to learn
