"""Arguments of `fit`, `evaluate` and `predict` are checked before any work, as scikit-learn
checks its parameters: a wrong type is a `TypeError`, a bad value a `ValueError`, each naming the
argument and what it must be. Never a failure inside JAX tracing, an IndexError or int()'s words."""

from __future__ import annotations

import numpy as np
import pytest

import dlc

SPEC = "dense 3 softmax\nloss categorical_crossentropy\noptimizer sgd\nepochs 1\n"
X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
Y = np.arange(12) % 3


@pytest.fixture(scope="module")
def trained() -> dlc.Program:
    program = dlc.compile(SPEC)
    program.fit(X, Y)
    return program


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"seed": 1.5}, TypeError, "seed must be an integer, got a float (1.5)"),
    ({"seed": -1}, ValueError, "seed must be in [0, 4294967296), got -1"),
    ({"seed": True}, TypeError, "seed must be an integer, got a bool"),
    ({"epochs": 0}, ValueError, "epochs must be in [1, "),
    ({"epochs": "3"}, TypeError, "epochs must be an integer, got a str ('3')"),
    ({"validation_data": (X,)}, TypeError, "validation_data must be a pair (x_val, y_val), got a tuple of 1"),
    ({"validation_data": X}, TypeError, "validation_data must be a pair (x_val, y_val), got a ndarray"),
    ({"validation_data": (X, Y[:3])}, ValueError, "validation_data[0] has 12 examples but validation_data[1] has 3"),
    ({"devices": "x"}, ValueError, "devices must be a number of devices or 'all', got 'x'"),
    ({"devices": 0}, ValueError, "devices must be at least 1, got 0"),
    ({"checkpoint_interval": -1}, ValueError, "checkpoint_interval must be a finite number of seconds"),
    ({"checkpoint_interval": float("nan")}, ValueError, "checkpoint_interval must be a finite number"),
    ({"on_epoch": "print"}, TypeError, "on_epoch must be a function (or None), got a str"),
    ({"should_stop": 1}, TypeError, "should_stop must be a function"),
    ({"resume": True}, ValueError, "resume=True needs checkpoint_dir"),
    ({"resume": "yes", "checkpoint_dir": "x"}, TypeError, "resume must be True or False"),
    ({"checkpoint_dir": 3}, TypeError, "checkpoint_dir must be a folder path"),
    ({"data_budget": 2.5}, TypeError, "data_budget must be an integer"),
])
def test_a_bad_fit_argument_is_named_before_training(kwargs, error, words):
    with pytest.raises(error) as caught:
        dlc.compile(SPEC).fit(X, Y, **kwargs)
    assert words in str(caught.value)


@pytest.mark.parametrize(("x", "y", "error", "words"), [
    (X, Y[:5], ValueError, "x has 12 examples but y has 5"),
    (X.tolist()[:3] + [[1.0]], Y[:4], ValueError, "x is ragged"),
    (np.array([["a"] * 4] * 12), Y, TypeError, "x must hold numbers, got an array of text"),
    (np.zeros((0, 4)), Y[:0], ValueError, "x has no examples"),
    (3.0, Y, ValueError, "x must hold one entry per example, got a single value"),
])
def test_bad_arrays_given_to_fit_are_named(x, y, error, words):
    with pytest.raises(error) as caught:
        dlc.compile(SPEC).fit(x, y)
    assert words in str(caught.value)


def test_validation_data_without_arrays_is_refused():
    with pytest.raises(ValueError, match="validation_data goes with x and y"):
        dlc.compile("data iris\n" + SPEC).fit(validation_data=(X, Y))


def test_numpy_integers_are_integers():
    program = dlc.compile(SPEC)
    program.fit(X, Y, seed=np.int64(3), epochs=np.int32(1))
    assert program.trained.program.seed == 3


def test_evaluate_needs_both_x_and_y(trained):
    with pytest.raises(ValueError, match="evaluate needs both x and y, or neither"):
        trained.evaluate(None, Y)
    with pytest.raises(ValueError, match="evaluate needs both x and y, or neither"):
        trained.evaluate(X)


def test_evaluate_and_predict_name_bad_arrays(trained):
    with pytest.raises(ValueError, match="x has 12 examples but y has 2"):
        trained.evaluate(X, Y[:2])
    with pytest.raises(TypeError, match="x must be an array of examples, got None"):
        trained.predict(None)
    with pytest.raises(TypeError, match="x must hold numbers"):
        trained.predict(np.array([["a"] * 4]))
    assert trained.predict(X[:2]).shape == (2, 3)


def test_an_input_the_arrays_do_not_have_names_x():
    program = dlc.compile("input 4\n" + SPEC)
    with pytest.raises(dlc.SpecError, match="`input 4` has 4 values per example, but `x` has 2"):
        program.fit(X[:, :2], Y)
