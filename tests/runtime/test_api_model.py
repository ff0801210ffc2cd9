"""The model in the caller's own JAX code, and `fit` as Keras users expect it: `program.module` and
`program.variables` by layer name, a second `fit` that goes on from the trained weights (and
`reset=True` that does not), `verbose=`, `batch_size=`, `validation_split=`, `program.classes`."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris

import dlc

IRIS = """data iris val=0 test=0 normalize=standard
input 4
dense 8 relu
batchnorm
dropout 0.1
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=1e-2
metrics accuracy
batch 16
epochs 2
"""


def leaves_equal(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def iris() -> dlc.Program:
    program = dlc.compile(IRIS)
    program.fit()
    return program


def test_module_apply_with_the_variables_is_predict_on_normalized_inputs(iris):
    x = load_iris().data
    normalized = ((x - x.mean(0)) / x.std(0)).astype(np.float32)  # what `normalize=standard` fits, on all of x
    outputs = np.asarray(iris.module.apply(iris.variables, normalized))
    np.testing.assert_allclose(outputs, iris.predict(x), atol=1e-6)
    np.testing.assert_allclose(outputs.sum(1), 1, atol=1e-5)  # probabilities, as predict gives


def test_variables_are_keyed_by_layer_name(iris):
    names = [layer.name for layer in iris.ir.layers]
    assert names == ["dense_1", "batchnorm_1", "dropout_1", "dense_2"]
    assert sorted(iris.variables) == ["batch_stats", "params"]
    assert sorted(iris.variables["params"]) == ["batchnorm_1", "dense_1", "dense_2"]
    assert sorted(iris.variables["batch_stats"]) == ["batchnorm_1"]
    assert iris.variables["params"]["dense_1"]["kernel"].shape == (4, 8)


def test_the_module_is_there_before_training_and_variables_after():
    program = dlc.compile(IRIS)
    x = np.zeros((2, 4), np.float32)
    variables = program.module.init(jax.random.key(0), x)
    assert sorted(variables["params"]) == ["batchnorm_1", "dense_1", "dense_2"]
    with pytest.raises(RuntimeError, match="not trained"):
        program.variables  # noqa: B018
    with pytest.raises(RuntimeError, match="not trained"):
        program.classes  # noqa: B018


def test_a_second_fit_goes_on_exactly_where_the_first_stopped():
    """Weights, batch statistics, optimizer state, normalization and the epochs' random draws all
    carry on: one epoch and then another train to the bit what two epochs in one fit do."""
    once = dlc.compile(IRIS)
    whole = once.fit(epochs=2)
    twice = dlc.compile(IRIS)
    first = twice.fit(epochs=1)
    second = twice.fit(epochs=1)
    assert [row["epoch"] for row in first + second] == [1, 2]
    assert [{k: v for k, v in row.items() if k != "epoch_time"} for row in first + second] == \
        [{k: v for k, v in row.items() if k != "epoch_time"} for row in whole]
    assert leaves_equal(twice.variables, once.variables)


def test_reset_starts_again_from_the_spec_initialization():
    program = dlc.compile(IRIS)
    first = program.fit(epochs=1)
    program.fit(epochs=1)
    again = program.fit(epochs=1, reset=True)
    assert again == [dict(first[0], epoch_time=again[0]["epoch_time"])]


def test_a_reloaded_run_trains_on_from_its_weights(iris, tmp_path):
    iris.save(tmp_path / "run")
    reloaded = dlc.load_run(tmp_path / "run")
    before = reloaded.variables
    history = reloaded.fit(epochs=1)
    fresh = dlc.compile(IRIS).fit(epochs=1)
    assert history[0]["loss"] < fresh[0]["loss"]
    assert not leaves_equal(before["params"], reloaded.variables["params"])


def test_classes_are_the_labels_in_output_order():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    names = np.array(["emu", "cat", "dog"])[np.argmax(x, axis=1)]
    program = dlc.compile("dense 3 softmax\nloss categorical_crossentropy\noptimizer adam\nepochs 1")
    program.fit(x, names)
    assert program.classes == ["cat", "dog", "emu"]
    assert program.predict(x).shape == (40, 3)
    binary = dlc.compile("dense 1 sigmoid\nloss binary_crossentropy\noptimizer adam\nepochs 1")
    binary.fit(x, np.where(x[:, 0] > 0, "yes", "no"))
    assert binary.classes == ["no", "yes"]
    regression = dlc.compile("dense 1\nloss mse\noptimizer adam\nepochs 1")
    regression.fit(x, x[:, 0])
    assert regression.classes is None


def test_batch_size_and_validation_split_are_the_spec_options_they_stand_for():
    with_options = dlc.compile(IRIS).fit(batch_size=32, validation_split=0.25)
    in_spec = dlc.compile(IRIS.replace("batch 16", "batch 32").replace("val=0 ", "val=0.25 ")).fit()
    assert "val_loss" in with_options[0]
    assert [{k: v for k, v in row.items() if k != "epoch_time"} for row in with_options] == \
        [{k: v for k, v in row.items() if k != "epoch_time"} for row in in_spec]


def test_validation_split_on_arrays_holds_out_examples():
    x = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    program = dlc.compile("dense 2 softmax\nloss categorical_crossentropy\noptimizer adam\nepochs 1")
    history = program.fit(x, (x[:, 0] > 0).astype(int), validation_split=0.25)
    assert "val_loss" in history[0]


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"validation_split": 1.0}, ValueError, "validation_split must be in [0, 1)"),
    ({"validation_split": "0.2"}, TypeError, "validation_split must be a fraction"),
    ({"batch_size": 0}, ValueError, "batch_size must be in [1, "),
    ({"verbose": 3}, ValueError, "verbose must be in [0, 3)"),
    ({"reset": 1}, TypeError, "reset must be True or False"),
])
def test_bad_keras_style_arguments_are_named(kwargs, error, words):
    with pytest.raises(error) as caught:
        dlc.compile(IRIS).fit(**kwargs)
    assert words in str(caught.value)


def test_validation_split_with_validation_data_or_a_full_hold_out_is_refused():
    x = np.zeros((8, 4), np.float32)
    with pytest.raises(ValueError, match="not both"):
        dlc.compile(IRIS).fit(x, np.zeros(8, int), validation_data=(x, np.zeros(8, int)), validation_split=0.2)
    with pytest.raises(ValueError, match="nothing is left to train on"):
        dlc.compile(IRIS.replace("test=0 ", "test=0.5 ")).fit(validation_split=0.5)


def test_verbose_prints_a_line_per_epoch_and_silence_prints_nothing(capsys):
    dlc.compile(IRIS).fit(epochs=2, verbose=2)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ") and "/" in line.split()[1]]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    dlc.compile(IRIS).fit(epochs=1)
    assert capsys.readouterr().err == ""


def test_variables_taken_before_a_fit_outlive_it():
    """Training donates its state to XLA; what the caller holds must not be deleted under it."""
    program = dlc.compile(IRIS)
    program.fit(epochs=1)
    held = program.variables
    copied = jax.tree.map(np.asarray, held)
    program.fit(epochs=1)
    assert leaves_equal(held, copied) and not leaves_equal(held["params"], program.variables["params"])
