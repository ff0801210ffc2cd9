"""Ways of training the benchmark's models, each behind one signature, so that `run.py` times
them all alike: `train(model, x, y, batch, epochs, on_epoch)` trains "mlp" or "cnn" (see
reference.py) with Adam at lr 1e-3 on integer labels and calls `on_epoch(epoch, logs)` after
every epoch.

The optional peers are imported only when they run, and only if installed: they are points of
comparison, never dependencies of the project.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import reference

os.environ.setdefault("KERAS_BACKEND", "jax")  # read when keras is first imported

LR = 1e-3
OnEpoch = Callable[[int, dict], None]


@dataclass(frozen=True)
class Contender:
    """A way of training: a short tag, its row label, the modules it needs, the models it can build."""

    tag: str
    name: str
    train: Callable[[str, np.ndarray, np.ndarray, int, int, OnEpoch], None]
    requires: tuple[str, ...] = ()
    models: tuple[str, ...] = ("mlp", "cnn")

    def missing(self) -> list[str]:
        packages = [module.split(".")[0] for module in self.requires]
        return [package for package in packages if importlib.util.find_spec(package) is None]


def train_jit_step(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    """The reference's model and loss, but one jitted step per batch called from a Python loop
    (the usual hand-written program): data on the device, the loss summed on the device and
    fetched once per epoch, the permutation drawn on the host."""
    module = reference.MODELS[model]()
    tx = optax.adam(LR)
    init_key, dropout_key = jax.random.split(jax.random.key(0))
    params, opt_state = reference.initial_state(module, tx, x.shape[1:], init_key)
    grad = jax.value_and_grad(lambda p, *args: reference.masked_loss(module, p, *args), has_aux=True)

    def step(params, opt_state, total, x, y, idx, mask, key, i):
        (_, batch_total), grads = grad(params, x[idx], y[idx], mask, jax.random.fold_in(key, i))
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, total + batch_total

    step = jax.jit(step, donate_argnums=(0, 1, 2))
    n = len(x)
    steps = math.ceil(n / batch)
    pad = steps * batch - n
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(steps, batch)
    x, y = jax.device_put(x), jax.device_put(y)
    rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        index = np.concatenate([rng.permutation(n), np.zeros(pad, np.int64)]).reshape(steps, batch)
        key = jax.random.fold_in(dropout_key, epoch)
        total = jnp.zeros(())
        for i in range(steps):
            params, opt_state, total = step(params, opt_state, total, x, y, index[i], mask[i], key, i)
        on_epoch(epoch, {"loss": float(total) / n})


def _keras_model(model: str, example_shape: tuple[int, ...]):
    import keras

    layers = keras.layers
    if model == "mlp":
        body = [layers.Dense(64, activation="relu"), layers.Dropout(0.5),
                layers.Dense(64, activation="relu"), layers.Dropout(0.5)]
    else:
        body = [layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(32, 3, padding="same", activation="relu"), layers.Flatten(), layers.Dropout(0.25)]
    return keras.Sequential([keras.Input(example_shape), *body, layers.Dense(10)])


def train_keras(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    """Keras 3 `fit` on the JAX backend (its defaults: glorot_uniform kernels, zero biases)."""
    import keras

    net = _keras_model(model, x.shape[1:])
    net.compile(optimizer=keras.optimizers.Adam(LR),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, logs))
    net.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[callback])


def _torch_model(model: str, example_shape: tuple[int, ...]):
    from torch import nn

    if model == "mlp":
        return nn.Sequential(nn.Linear(example_shape[0], 64), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))
    height, width, channels = example_shape
    return nn.Sequential(nn.Conv2d(channels, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding="same"), nn.ReLU(), nn.Flatten(), nn.Dropout(0.25),
                         nn.Linear(32 * (height // 2) * (width // 2), 10))


def train_torch(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    """PyTorch eager, the loss summed on the tensor side and read once per epoch."""
    import torch

    torch.manual_seed(0)
    net = _torch_model(model, x.shape[1:])
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    features = torch.from_numpy(x if x.ndim == 2 else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    labels = torch.from_numpy(y.astype(np.int64))
    net.train()
    for epoch in range(1, epochs + 1):
        total = torch.zeros(())
        for idx in torch.randperm(len(x)).split(batch):
            loss = torch.nn.functional.cross_entropy(net(features[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
        on_epoch(epoch, {"loss": total.item() / len(x)})


def train_sklearn(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    """scikit-learn's MLPClassifier, one `partial_fit` (one shuffled epoch) at a time. It has no
    dropout, so its model is the MLP without it."""
    from sklearn.neural_network import MLPClassifier

    net = MLPClassifier(hidden_layer_sizes=(64, 64), solver="adam", learning_rate_init=LR, batch_size=batch,
                        alpha=0.0, shuffle=True, random_state=0)
    classes = np.unique(y)
    for epoch in range(1, epochs + 1):
        net.partial_fit(x, y, classes=classes)
        on_epoch(epoch, {"loss": net.loss_})


PEERS = (
    Contender("jit-step", "one jitted step per batch from Python", train_jit_step),
    Contender("keras", "Keras 3 `fit`, JAX backend", train_keras, requires=("keras",)),
    Contender("torch", "PyTorch eager", train_torch, requires=("torch",)),
    Contender("sklearn", "scikit-learn MLPClassifier (no dropout)", train_sklearn, requires=("sklearn.neural_network",),
              models=("mlp",)),
)
