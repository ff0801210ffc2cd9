"""The hand-written JAX/Flax(linen)/Optax program that dlc is measured against: the practical
optimum for training a small model on one device.

The whole epoch is one jitted function: it draws a permutation on the device, pads the last
partial batch (masked out of the loss) so every epoch has one static shape, and `lax.scan`s over
the mini-batches. Parameters, optimizer state and the key are donated; the data stays on the
device; the host syncs once per epoch, to fetch the mean loss. Kernels are glorot_uniform and
biases zero, as dlc's defaults, and the loss is softmax cross-entropy from the logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

GLOROT = nn.initializers.glorot_uniform()


class MLP(nn.Module):
    """Dense 64 relu, dropout 0.5, dense 64 relu, dropout 0.5, dense 10 (logits)."""

    hidden: tuple[int, ...] = (64, 64)
    classes: int = 10
    rate: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for units in self.hidden:
            x = nn.relu(nn.Dense(units, kernel_init=GLOROT)(x))
            x = nn.Dropout(self.rate, deterministic=not train)(x)
        return nn.Dense(self.classes, kernel_init=GLOROT)(x)


class CNN(nn.Module):
    """specs/cnn.dl: conv 16 3x3 same relu, maxpool 2, conv 32 3x3 same relu, flatten, dropout
    0.25, dense 10 (logits)."""

    classes: int = 10
    rate: float = 0.25

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.relu(nn.Conv(16, (3, 3), padding="SAME", kernel_init=GLOROT)(x))  # (n, 8, 8, 16)
        x = nn.max_pool(x, (2, 2), strides=(2, 2))  # (n, 4, 4, 16)
        x = nn.relu(nn.Conv(32, (3, 3), padding="SAME", kernel_init=GLOROT)(x))  # (n, 4, 4, 32)
        x = x.reshape((x.shape[0], -1))  # (n, 512)
        x = nn.Dropout(self.rate, deterministic=not train)(x)
        return nn.Dense(self.classes, kernel_init=GLOROT)(x)


MODELS = {"mlp": MLP, "cnn": CNN}


def masked_loss(model: nn.Module, params: Any, x: jax.Array, y: jax.Array, mask: jax.Array,
                key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean loss over the real examples of a batch, their summed loss): the first is what the
    gradient follows, the second what the epoch's mean is made of."""
    logits = model.apply({"params": params}, x, train=True, rngs={"dropout": key})
    total = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y) * mask)
    return total / jnp.maximum(jnp.sum(mask), 1.0), total


def epoch_program(model: nn.Module, tx: optax.GradientTransformation, batch: int) -> Callable:
    """The jitted epoch: (params, opt_state, key, x, y) -> (params, opt_state, next key, mean loss)."""

    def train_epoch(params, opt_state, key, x, y):
        n = x.shape[0]
        steps = math.ceil(n / batch)
        pad = steps * batch - n
        key, shuffle_key, dropout_key = jax.random.split(key, 3)
        order = jax.random.permutation(shuffle_key, n)
        index = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(steps, batch)
        mask = jnp.concatenate([jnp.ones((n,)), jnp.zeros((pad,))]).reshape(steps, batch)
        grad = jax.value_and_grad(lambda p, *batch_args: masked_loss(model, p, *batch_args), has_aux=True)

        def step(carry, inputs):
            params, opt_state, total = carry
            idx, m, step_key = inputs
            (_, batch_total), grads = grad(params, x[idx], y[idx], m, step_key)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, total + batch_total), None

        keys = jax.random.split(dropout_key, steps)
        (params, opt_state, total), _ = jax.lax.scan(step, (params, opt_state, jnp.zeros(())), (index, mask, keys))
        return params, opt_state, key, total / n

    return jax.jit(train_epoch, donate_argnums=(0, 1, 2))


def initial_state(model: nn.Module, tx: optax.GradientTransformation, example_shape: tuple[int, ...],
                  key: jax.Array) -> tuple[Any, Any]:
    """(params, optimizer state) from one compiled program. It runs once, so it is compiled without
    XLA's backend optimisations, which cost more compile time than they save (as dlc does)."""

    def init(key):
        params = model.init(key, jnp.zeros((1, *example_shape), jnp.float32), train=False)["params"]
        return params, tx.init(params)

    return jax.jit(init).lower(key).compile({"xla_backend_optimization_level": 0})(key)


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch: int, epochs: int, lr: float = 1e-3,
        seed: int = 0, on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train with Adam; returns the history (one dict per epoch), calling `on_epoch` after each."""
    tx = optax.adam(lr)
    init_key, key = jax.random.split(jax.random.key(seed))
    params, opt_state = initial_state(model, tx, x.shape[1:], init_key)
    train_epoch = epoch_program(model, tx, batch)
    x, y = jax.device_put(x), jax.device_put(y)
    history = []
    for epoch in range(1, epochs + 1):
        params, opt_state, key, loss = train_epoch(params, opt_state, key, x, y)
        logs = {"epoch": epoch, "loss": float(loss)}  # the one host sync of the epoch
        history.append(logs)
        if on_epoch:
            on_epoch(epoch, logs)
    return history
