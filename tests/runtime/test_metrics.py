"""`precision`, `recall`, `f1` and `auc` are computed exactly over the whole split, as scikit-learn
computes them from the same predictions: counted per batch into a confusion matrix (rows gathered
for `auc`) on the device, then finished on the host (`dlc/runtime/measures.py`). Checked on
evaluation over several padded chunks, on training epochs through the scan, one program per step
and streaming (a frozen model, so every batch of the epoch sees the same weights), and on the
functions alone against scikit-learn with ties, absent classes and several labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

import dlc
from dlc.runtime import measures
from dlc.runtime import train as train_module
from dlc.runtime.train import EVAL_CHUNK, init_state, make_trainer

RNG = np.random.default_rng(0)
SKLEARN = {"precision": precision_score, "recall": recall_score, "f1": f1_score}


def reference(task: str, probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """scikit-learn's numbers for the model's predictions."""
    if task == "multilabel":
        guess = (probabilities > 0.5).astype(int)
        return {name: fn(y.astype(int), guess, average="macro", zero_division=0) for name, fn in SKLEARN.items()}
    if task == "binary":
        guess, truth = (probabilities[:, 0] > 0.5).astype(int), y.reshape(-1).astype(int)
        out = {name: fn(truth, guess, zero_division=0) for name, fn in SKLEARN.items()}
        return out | {"auc": roc_auc_score(truth, probabilities[:, 0])}
    guess = np.argmax(probabilities, axis=-1)
    return {name: fn(y, guess, average="macro", zero_division=0) for name, fn in SKLEARN.items()}


BINARY = "input 6\ndense 5 tanh\ndense 1 sigmoid\nloss binary_crossentropy\noptimizer sgd lr=0.1\n" \
         "metrics precision recall f1 auc accuracy\n"
CATEGORICAL = "input 6\ndense 5 tanh\ndense 4 softmax\nloss categorical_crossentropy\noptimizer sgd lr=0.1\n" \
              "metrics f1 accuracy precision recall\n"


MULTILABEL = "input 6\ndense 5 tanh\ndense 3 sigmoid\nloss binary_crossentropy\noptimizer sgd lr=0.1\n" \
             "metrics recall precision f1\n"


def labels(task: str, n: int) -> np.ndarray:
    if task == "multilabel":
        return RNG.integers(0, 2, size=(n, 3)).astype(np.float32)
    return RNG.integers(0, 2, size=(n, 1)).astype(np.float32) if task == "binary" else RNG.integers(0, 4, size=n)


@pytest.mark.parametrize(("text", "task"), [(BINARY, "binary"), (CATEGORICAL, "categorical"),
                                                (MULTILABEL, "multilabel")])
def test_evaluation_over_padded_chunks_is_sklearns(text: str, task: str):
    """2,500 rows: three chunks of EVAL_CHUNK, the last padded; the untrained model's predictions."""
    program = dlc.compile(text).ir
    x, y = RNG.normal(size=(2500, 6)).astype(np.float32), labels(task, 2500)
    assert len(x) % EVAL_CHUNK
    trainer = make_trainer(program, len(x), 1)
    state = init_state(trainer, program.input_shape, program.seed)
    got = trainer.evaluate(state.params, state.batch_stats, trainer.eval_set(x, y))
    want = reference(task, trainer.predict(state.params, state.batch_stats, x), y)
    assert list(got) == sorted(["loss", *program.metrics])
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


FROZEN = "dense 5 tanh trainable=false\ndense 1 sigmoid trainable=false\nloss binary_crossentropy\n" \
         "optimizer sgd lr=0.1\nbatch 16\nmetrics auc f1 precision recall\n"


@pytest.mark.parametrize("path", ["scan", "per_step", "streamed"])
def test_training_epoch_metrics_are_the_whole_splits(monkeypatch, path: str):
    """A frozen model: every batch sees the same weights, so the epoch's numbers must equal the
    whole training split's, whichever way the epoch runs (75 rows: a padded last batch)."""
    if path == "per_step":
        monkeypatch.setattr(train_module, "_has_convolution", lambda layers: True)
    x, y = RNG.normal(size=(75, 6)).astype(np.float32), labels("binary", 75)
    program = dlc.compile(FROZEN)
    history = program.fit(x, y, epochs=1, data_budget=600 if path == "streamed" else None)
    session = program.trained
    want = reference("binary", session.trainer.predict(session.state.params, session.state.batch_stats, x), y)
    for name, value in want.items():
        assert history[0][name] == pytest.approx(value, abs=1e-12), name


def test_validation_columns_are_sklearns_on_the_final_weights():
    data = dlc.compile("data breast_cancer val=0.25 normalize=standard\ndense 1 sigmoid\nloss binary_crossentropy\n"
                       "optimizer sgd lr=0.1\nepochs 2\nmetrics auc precision recall f1")
    history = data.fit()
    session = data.trained
    val = session.prepared.val
    want = reference("binary", session.trainer.predict(session.state.params, session.state.batch_stats, val.x), val.y)
    for name, value in want.items():
        assert history[-1][f"val_{name}"] == pytest.approx(value, abs=1e-12), name
    assert data.evaluate()["auc"] == pytest.approx(want["auc"], abs=1e-12)  # the held-out split: val here


def test_rank_auc_averages_ties_as_sklearn():
    score = np.round(RNG.uniform(size=300), 1).astype(np.float32)  # eleven values: many ties
    label = RNG.integers(0, 2, size=300).astype(np.float32)
    mask = np.ones(300, np.float32)
    mask[-20:] = 0  # padding rows never count
    assert measures.rank_auc(score, label, mask) == pytest.approx(roc_auc_score(label[:-20], score[:-20]), abs=1e-12)
    assert np.isnan(measures.rank_auc(score, np.ones(300, np.float32), mask))  # one class: undefined


def counts(truth: np.ndarray, guess: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((1, classes, classes), np.int64)
    np.add.at(matrix, (0, truth, guess), 1)
    return matrix


@pytest.mark.parametrize("metric", ["precision", "recall", "f1"])
def test_macro_average_over_the_classes_that_occur(metric: str):
    """Class 4 of 6 occurs nowhere and class 5 only in the predictions: scikit-learn averages over
    the classes in either, with 0 where a ratio has no denominator."""
    from dlc.compiler import registry as reg

    truth = RNG.choice([0, 1, 2, 3], size=200)
    guess = np.where(RNG.uniform(size=200) < 0.6, truth, RNG.choice([0, 1, 2, 5], size=200))
    entry = reg.lookup("metric", metric)
    got = measures.class_average(counts(truth, guess, 6), entry.per_class, binary=False)
    assert got == pytest.approx(SKLEARN[metric](truth, guess, average="macro", zero_division=0), abs=1e-12)


@pytest.mark.parametrize("metric", ["precision", "recall", "f1"])
def test_several_labels_average_each_labels_positive_class(metric: str):
    """A binary output of three units: each unit's 2x2 counts, the mean of their positive-class
    scores (scikit-learn's macro average over the label columns)."""
    from dlc.compiler import registry as reg

    truth, guess = RNG.integers(0, 2, size=(150, 3)), RNG.integers(0, 2, size=(150, 3))
    matrix = np.zeros((3, 2, 2), np.int64)
    for unit in range(3):
        np.add.at(matrix, (unit, truth[:, unit], guess[:, unit]), 1)
    got = measures.class_average(matrix, reg.lookup("metric", metric).per_class, binary=True)
    assert got == pytest.approx(SKLEARN[metric](truth, guess, average="macro", zero_division=0), abs=1e-12)
