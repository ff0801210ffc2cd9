"""`trainable=false`: a frozen layer's parameters (and a frozen batchnorm's statistics) are bit-identical
after training, for every layer of the registry that has parameters; the trainable ones change; the
optimizer keeps no state for frozen ones, and clipping sees the trainable gradients alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlc
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.lower import optimizer
from dlc.runtime.train import init_state

LEARNING = [layer for layer in reg.LAYERS if layer.learns]
INPUTS = {"64": (64,), "8x8x1": (8, 8, 1), "8x8": (8, 8)}  # flat, an image, a sequence
RNG = np.random.default_rng(0)
Y = np.arange(24) % 3


def model(example: str, shape: str, frozen: bool) -> str:
    """The layer's example, frozen or not, before a batchnorm and a head that stay trainable."""
    return (f"input {shape}\n{example}{' trainable=false' if frozen else ''}\nflatten\nbatchnorm momentum=0.5\n"
            "dense 3 softmax name=head\nloss categorical_crossentropy\noptimizer adamw lr=0.05 clip=1.0\nbatch 8\n")


def input_for(layer: reg.Layer) -> str:
    return next(shape for shape in INPUTS if check_text(model(layer.example, shape, True))[0] is not None)


def trained(text: str, shape: str):
    """The state a program starts from and the state two epochs of training leave."""
    program = dlc.compile(text)
    vocab = program.ir.token_vocab  # a model of token ids takes ids it has vectors for, not numbers
    x = RNG.integers(0, vocab, size=(24, *INPUTS[shape])) if vocab else RNG.normal(size=(24, *INPUTS[shape]))
    program.fit(x.astype(np.int32 if vocab else np.float32), Y, epochs=2)
    session = program.trained
    return init_state(session.trainer, session.program.input_shape, session.program.seed), session.state


def same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_every_layer_with_parameters_is_listed() -> None:
    assert {layer.name for layer in LEARNING} >= {"dense", "conv2d", "batchnorm", "layernorm"}


@pytest.mark.parametrize("layer", LEARNING, ids=lambda layer: layer.name)
def test_frozen_parameters_and_statistics_are_bit_identical_after_training(layer: reg.Layer) -> None:
    shape = input_for(layer)
    before, after = trained(model(layer.example, shape, True), shape)
    name = f"{layer.name}_1"
    assert same(before.params[name], after.params[name])
    if name in before.batch_stats:
        assert same(before.batch_stats[name], after.batch_stats[name])
    # The layers after it train: the head's parameters and the trainable batchnorm's statistics move.
    trainable_norm = next(key for key in after.batch_stats if key != name)
    assert not same(before.params["head"], after.params["head"])
    assert not same(before.batch_stats[trainable_norm], after.batch_stats[trainable_norm])


@pytest.mark.parametrize("layer", LEARNING, ids=lambda layer: layer.name)
def test_the_same_layer_trainable_changes(layer: reg.Layer) -> None:
    shape = input_for(layer)
    before, after = trained(model(layer.example, shape, False), shape)
    assert not same(before.params[f"{layer.name}_1"], after.params[f"{layer.name}_1"])


def test_frozen_layers_keep_no_optimizer_state() -> None:
    program = dlc.compile("input 4\ndense 8 relu trainable=false\ndense 3 softmax\nloss categorical_crossentropy\n"
                          "optimizer adam\n")
    program.fit(RNG.normal(size=(24, 4)).astype(np.float32), Y, epochs=1)
    arrays = [leaf for leaf in jax.tree.leaves(program.trained.state.opt_state) if np.ndim(leaf)]
    assert sum(np.size(leaf) for leaf in arrays) == 2 * program.ir.params  # adam's two moments, of the head only
    assert program.ir.params == 8 * 3 + 3 and program.ir.frozen_params == 4 * 8 + 8


def test_a_frozen_batchnorm_uses_its_running_statistics_in_training() -> None:
    program = dlc.compile("input 4\nbatchnorm trainable=false\ndense 3 softmax\nloss categorical_crossentropy\n"
                          "optimizer sgd\n")
    program.fit(RNG.normal(size=(24, 4)).astype(np.float32), Y, epochs=1)
    session = program.trained
    x = jnp.asarray(RNG.normal(3.0, 2.0, size=(8, 4)).astype(np.float32))
    state = session.state
    training, _ = session.trainer.forward(state.params, state.batch_stats, x, True, jax.random.key(0), jnp.ones(8))
    evaluating, _ = session.trainer.forward(state.params, state.batch_stats, x, False)
    np.testing.assert_array_equal(training, evaluating)


def test_clipping_sees_the_trainable_gradients_only() -> None:
    """A frozen layer's huge gradient neither moves it nor shrinks, through the global norm, the
    trainable layer's small one."""
    program, _ = check_text("input 2\ndense 2 trainable=false\ndense 1\nloss mse\noptimizer sgd lr=1 clip=1.0")
    tx = optimizer(program, 1, 1)
    params = {"dense_1": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)},
              "dense_2": {"kernel": jnp.ones((2, 1)), "bias": jnp.ones(1)}}
    grads = {"dense_1": jax.tree.map(lambda p: 1e3 * jnp.ones_like(p), params["dense_1"]),
             "dense_2": jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params["dense_2"])}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates["dense_1"]))
    np.testing.assert_allclose(updates["dense_2"]["kernel"], -0.1 * np.ones((2, 1)), rtol=1e-6)
