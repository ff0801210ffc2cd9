"""The Python API: `dlc.compile` a spec without `input`, fit it on arrays, evaluate, predict, save
and reload; every refusal is a `SpecError` pointing into the spec, or one clear message about
the data, never a traceback from inside JAX."""

from __future__ import annotations

import numpy as np
import pytest

import dlc
from dlc.runtime.runfolder import RunFolderError

SPEC = """dense 8 relu
batchnorm
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=0.05
metrics accuracy
epochs 2
"""
CLASS_NAMES = np.array(["cat", "dog", "emu"])


def animals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n examples of 4 features, labelled by name after which of the first three is largest."""
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x, CLASS_NAMES[np.argmax(x[:, :3], axis=1)]


TRAIN, VAL = animals(30, seed=0), animals(12, seed=1)


@pytest.fixture(scope="module")
def program() -> dlc.Program:
    program = dlc.compile(SPEC)
    program.fit(*TRAIN, validation_data=VAL)
    return program


def test_fit_takes_the_input_shape_from_the_arrays(program):
    assert program.ir.input_shape is None and program.ir.params is None
    trained = program.trained.program
    assert trained.input_shape == TRAIN[0].shape[1:]
    assert trained.params == dlc.compile("input 4\n" + SPEC).ir.params
    assert len(program.trained.history) == trained.epochs


def test_evaluate_returns_the_loss_and_metrics(program):
    x, y = VAL
    metrics = program.evaluate(x, y)
    assert set(metrics) == {"loss", "accuracy"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    predicted = CLASS_NAMES[np.argmax(program.predict(x), axis=1)]  # class names map to indices in sorted order
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y))


def test_evaluate_without_arrays_uses_the_validation_split(program):
    assert program.evaluate() == program.evaluate(*VAL)


def test_predict_returns_probabilities_per_class(program):
    outputs = program.predict(TRAIN[0])
    assert isinstance(outputs, np.ndarray)
    assert outputs.shape == (len(TRAIN[0]), 3)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-6)


def test_saved_run_reloads_to_the_same_predictions(program, tmp_path):
    program.save(tmp_path / "run")
    loaded = dlc.load_run(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict(VAL[0]), program.predict(VAL[0]))
    assert loaded.evaluate(*VAL) == program.evaluate(*VAL)
    with pytest.raises(ValueError, match="trained on arrays"):  # a run folder keeps no arrays
        loaded.evaluate()


def test_load_run_of_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        dlc.load_run(tmp_path)


def test_invalid_spec_raises_spec_error_with_every_diagnostic():
    with pytest.raises(dlc.SpecError) as caught:
        dlc.compile("input 4\ndense 0 relu\ndense 3 softmaxx\n")
    assert isinstance(caught.value, ValueError)
    errors = [(d.code, d.span.line, d.span.col) for d in caught.value.diagnostics if d.is_error]
    assert errors == [("E301", 2, 7), ("E203", 3, 9)]
    assert str(caught.value).startswith("<spec>:2:7: error[E301]")


def test_labels_that_do_not_fit_the_output_are_an_error_in_the_spec():
    program = dlc.compile("dense 10 softmax\nloss categorical_crossentropy\noptimizer adam\n")
    x = np.zeros((24, 4), np.float32)
    with pytest.raises(dlc.SpecError, match="the output has 10 units but `y` has 12 classes") as caught:
        program.fit(x, np.arange(24) % 12)
    assert [(d.span.line, d.code) for d in caught.value.diagnostics] == [(1, "E501")]


@pytest.mark.parametrize(("missing", "code"), [("loss", "E507"), ("optimizer", "E508")])
def test_fit_refuses_a_spec_without_loss_or_optimizer(missing, code):
    spec = "".join(line + "\n" for line in SPEC.splitlines() if not line.startswith(missing))
    program = dlc.compile(spec)  # only a warning when checking
    with pytest.raises(dlc.SpecError) as caught:
        program.fit(*TRAIN)
    assert [d.code for d in caught.value.diagnostics if d.is_error] == [code]


def test_early_stop_needs_validation_data_given_to_fit():
    program = dlc.compile(SPEC + "early_stop 2\n")
    with pytest.raises(dlc.SpecError) as caught:
        program.fit(*TRAIN)
    assert [d.code for d in caught.value.diagnostics if d.is_error] == ["E506"]


def test_misuse_before_training_is_a_plain_error():
    program = dlc.compile(SPEC)
    with pytest.raises(RuntimeError, match="not trained"):
        program.predict(TRAIN[0])
    with pytest.raises(ValueError, match="both x and y"):
        program.fit(TRAIN[0])
    with pytest.raises(ValueError, match="30 examples but y has 12"):
        program.fit(TRAIN[0], VAL[1])
