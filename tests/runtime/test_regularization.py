"""`l1=`, `l2=`: l1 x sum |w| + l2 x sum w^2 over a layer's weights but its biases, added to the
training loss (and its gradient), never to the validation loss; in a sweep, members that differ
in them train as one vmapped program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlc
from dlc.compiler import trainingfacts
from dlc.runtime import measures, sweep
from dlc.runtime.loop import fit
from dlc.runtime.options import FitOptions
from dlc.runtime.train import init_state, make_trainer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 5)).astype(np.float32)
Y = RNG.normal(size=(32, 1)).astype(np.float32)

SPEC = "dense 4 tanh l1=0.01 l2=0.1\ndense 1 l2=0.05\nloss mse\noptimizer sgd lr=0.1\nbatch 32\n"


def by_hand(params, lowered, x, y) -> jax.Array:
    return jnp.mean(lowered.loss(lowered.module.apply({"params": params}, x, logits=True), y))


def test_one_step_minimizes_the_loss_plus_the_penalty_and_validation_sees_the_loss_alone():
    """One full batch of plain SGD: the reported loss is the loss plus the penalty at the start, the
    update is -lr times their gradient, and the validation loss is the loss alone after it."""
    program = dlc.compile(SPEC)
    history = program.fit(X, Y, validation_data=(X, Y), epochs=1)
    session = program.trained
    start = init_state(session.trainer, session.program.input_shape, session.program.seed).params
    lowered = session.trainer.lowered
    kernels = [start["dense_1"]["kernel"], start["dense_2"]["kernel"]]
    penalty = (0.01 * jnp.sum(jnp.abs(kernels[0])) + 0.1 * jnp.sum(kernels[0] ** 2)
               + 0.05 * jnp.sum(kernels[1] ** 2))
    assert history[0]["loss"] == pytest.approx(float(by_hand(start, lowered, X, Y) + penalty), rel=1e-5)

    def objective(params):
        return by_hand(params, lowered, X, Y) + measures.penalty(params, trainingfacts.penalty_coefficients(session.program))

    grads = jax.grad(objective)(start)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, start, grads)
    for got, want in zip(jax.tree.leaves(session.state.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert history[0]["val_loss"] == pytest.approx(float(by_hand(session.state.params, lowered, X, Y)), rel=1e-5)


def test_recurrent_cells_penalize_input_and_recurrent_kernels_not_biases():
    program = dlc.compile("input 4x3\nlstm 5 l1=0.5\ndense 1\nloss mse\noptimizer adam").ir
    trainer = make_trainer(program, 8, 1)
    params = init_state(trainer, program.input_shape, 0).params
    cell = params["lstm_1"]["cell"]
    kernels = [cell[gate]["kernel"] for gate in cell]
    assert {gate[0] for gate in cell} == {"i", "h"} and len(kernels) == 8
    want = sum(0.5 * jnp.sum(jnp.abs(k)) for k in kernels)
    assert float(measures.penalty(params, trainingfacts.penalty_coefficients(program))) == pytest.approx(float(want), rel=1e-6)


def test_frozen_or_zero_penalties_add_nothing():
    program = dlc.compile("input 4\ndense 4 l2=0.1 trainable=false\ndense 3 l1=0\ndense 1 l2=0.2\nloss mse\n"
                          "optimizer adam").ir
    assert trainingfacts.penalty_coefficients(program) == {"dense_3": (0.0, 0.2)}
    assert measures.penalty({}, {}) is None


def test_members_differing_in_penalties_train_as_one_program_as_they_would_alone():
    text = "input 5\ndense 6 relu l2=[0, 1e-2]\ndense 1 l1=[0.0, 1e-3]\nloss mse\noptimizer adam lr=1e-2\nbatch 8\n" \
           "epochs 3\n"
    members = list(dlc.compile(text).ir.sweep.members)
    assert len(members) == 4 and sweep._groups(members) == [[0, 1, 2, 3]]
    train, val = (X[:24], Y[:24]), (X[24:], Y[24:])
    together = sweep.train_members(members, train, val, FitOptions())
    for member, outcome in zip(members, together, strict=True):
        trainer = make_trainer(member, len(train[0]), member.epochs)
        alone = fit(trainer, init_state(trainer, member.input_shape, member.seed), train, val, FitOptions())
        for ours, theirs in zip(outcome.history, alone.history, strict=True):
            for key, value in theirs.items():
                if key != "epoch_time":
                    assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert together[0].history[-1]["loss"] != together[3].history[-1]["loss"]


def test_a_penalty_in_a_repeat_block_applies_to_every_copy():
    """contract-v2 names_in_repeat: `l2=1e-4` inside `repeat 3` (layers block_1 ... block_3)."""
    program = dlc.compile("input 16\nrepeat 3 { dense 16 relu name=block l2=1e-4 }\ndense 1 sigmoid name=out\n"
                          "loss binary_crossentropy\noptimizer sgd lr=0.1").ir
    assert trainingfacts.penalty_coefficients(program) == {f"block_{i}": (0.0, 1e-4) for i in (1, 2, 3)}


def test_a_large_penalty_is_no_divergence():
    """The divergence guard compares the training loss, penalty included, with the loss before the
    first update: that baseline holds the penalty too, or a strong `l1=` alone would read as a loss
    that grew a thousandfold."""
    x, y = X / 100, Y / 100  # a small loss beside a penalty of about 10 x sum |w| ~ 2e2
    spec = "input 5\ndense 64 l1={l1}\ndense 1\nloss mse\noptimizer sgd lr=1e-4\nbatch 32\nepochs 2\n"
    history = dlc.compile(spec.format(l1=10)).fit(x, y)
    assert len(history) == 2 and history[0]["loss"] > 1e3 * float(np.mean(y ** 2))


def test_a_large_penalty_is_no_divergence_for_the_members_of_a_sweep():
    """The same for a sweep's members trained as one program: each member's baseline holds its own
    penalty."""
    x, y = X / 100, Y / 100
    program = dlc.compile("input 5\ndense 64 l1=[10, 20]\ndense 1\nloss mse\noptimizer sgd lr=1e-4\nbatch 32\n"
                          "epochs 2\n")
    assert sweep._groups(list(program.ir.sweep.members)) == [[0, 1]]
    histories = program.fit(x, y)
    assert [len(h) for h in histories] == [2, 2]
    assert histories[1][0]["loss"] > histories[0][0]["loss"] > 1e3 * float(np.mean(y ** 2))
