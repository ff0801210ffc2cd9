"""Losses (what training minimizes) and metrics (what is reported besides)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlc.compiler.registry.base import GREATER_THAN_ZERO, Entry, option


@dataclass(frozen=True)
class Loss(Entry):
    """`task`: `categorical` (integer class labels), `binary` (0/1 per unit) or `regression`.
    `probability`: the output activation this loss fuses with (the from-logits form).
    `per_example(outputs, labels, args, lib)`: one loss value per example; cross-entropies get
    logits (the output before its softmax/sigmoid). `code(args)` is the same written out for
    `--emit py`: an expression of `out` and `y`."""

    task: str = "regression"
    probability: str | None = None
    per_example: Callable[..., Any] | None = None
    code: Callable[[dict], str] | None = None


LOSSES: tuple[Loss, ...] = (
    Loss("mse", "mean squared error", example="loss mse",
         per_example=lambda out, y, a, lib: lib.jnp.mean((out - y) ** 2, axis=-1),
         code=lambda a: "jnp.mean((out - y) ** 2, axis=-1)"),
    Loss("mae", "mean absolute error", example="loss mae",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.jnp.abs(out - y), axis=-1),
         code=lambda a: "jnp.mean(jnp.abs(out - y), axis=-1)"),
    Loss("huber", "squared error near zero, absolute error beyond `delta`",
         (option("delta", "float", "where the loss turns linear", 1.0, range=GREATER_THAN_ZERO),),
         example="loss huber delta=1.0",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.optax.huber_loss(out, y, delta=a["delta"]), axis=-1),
         code=lambda a: f"jnp.mean(optax.huber_loss(out, y, delta={a['delta']!r}), axis=-1)"),
    Loss("binary_crossentropy", "log loss of one probability per unit (two classes, or several labels)",
         example="loss binary_crossentropy", task="binary", probability="sigmoid",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.optax.sigmoid_binary_cross_entropy(out, y), axis=-1),
         code=lambda a: "jnp.mean(optax.sigmoid_binary_cross_entropy(out, y), axis=-1)"),
    Loss("categorical_crossentropy", "log loss of a probability over classes; labels are class indices",
         aliases=("sparse_categorical_crossentropy",), example="loss categorical_crossentropy",
         task="categorical", probability="softmax",
         per_example=lambda out, y, a, lib: lib.optax.softmax_cross_entropy_with_integer_labels(out, y),
         code=lambda a: "optax.softmax_cross_entropy_with_integer_labels(out, y)"),
)


@dataclass(frozen=True)
class Metric(Entry):
    """`per_example(predictions, labels, task, lib)`: one value per example. Predictions are
    probabilities for classification losses, outputs for regression. `code(task)` is the same
    written out for `--emit py`: an expression of `pred` and `y`."""

    needs_classification: bool = False
    higher_is_better: bool = False
    per_example: Callable[..., Any] | None = None
    code: Callable[[str], str] | None = None


def _accuracy(pred: Any, y: Any, task: str, lib: Any) -> Any:
    if task == "categorical":
        return (lib.jnp.argmax(pred, axis=-1) == y).astype(lib.jnp.float32)
    return lib.jnp.mean(((pred > 0.5) == (y > 0.5)).astype(lib.jnp.float32), axis=-1)


def _code_accuracy(task: str) -> str:
    if task == "categorical":
        return "(jnp.argmax(pred, axis=-1) == y).astype(jnp.float32)"
    return "jnp.mean(((pred > 0.5) == (y > 0.5)).astype(jnp.float32), axis=-1)"


def _as_target(pred: Any, y: Any, task: str, lib: Any) -> Any:
    """Labels in the shape of the predictions: one-hot for class indices."""
    return lib.jax.nn.one_hot(y, pred.shape[-1]) if task == "categorical" else y


def _code_target(task: str) -> str:
    return "jax.nn.one_hot(y, pred.shape[-1])" if task == "categorical" else "y"


METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "fraction of examples whose predicted class is right", example="metrics accuracy",
           needs_classification=True, higher_is_better=True, per_example=_accuracy, code=_code_accuracy),
    Metric("mse", "mean squared error", example="metrics mse",
           per_example=lambda p, y, task, lib: lib.jnp.mean((p - _as_target(p, y, task, lib)) ** 2, axis=-1),
           code=lambda task: f"jnp.mean((pred - {_code_target(task)}) ** 2, axis=-1)"),
    Metric("mae", "mean absolute error", example="metrics mae",
           per_example=lambda p, y, task, lib: lib.jnp.mean(lib.jnp.abs(p - _as_target(p, y, task, lib)), axis=-1),
           code=lambda task: f"jnp.mean(jnp.abs(pred - {_code_target(task)}), axis=-1)"),
)
