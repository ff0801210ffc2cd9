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


# Classification losses weigh examples by class: `balanced` as Keras and scikit-learn mean it, each example
# weighted n / (classes * examples of its class) in the training split (`runtime/measures.class_weights`).
CLASS_WEIGHT = option("class_weight", "choice", "`balanced`: weigh each training example by n / (classes x examples "
                      "of its class), so that every class counts alike in the training loss", None,
                      choices=("balanced",), synonyms=("class_weights", "weights", "sample_weight"))

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
         (CLASS_WEIGHT,), example="loss binary_crossentropy", task="binary", probability="sigmoid",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.optax.sigmoid_binary_cross_entropy(out, y), axis=-1),
         code=lambda a: "jnp.mean(optax.sigmoid_binary_cross_entropy(out, y), axis=-1)"),
    Loss("categorical_crossentropy", "log loss of a probability over classes; labels are class indices",
         (CLASS_WEIGHT,), aliases=("sparse_categorical_crossentropy",), example="loss categorical_crossentropy",
         task="categorical", probability="softmax",
         per_example=lambda out, y, a, lib: lib.optax.softmax_cross_entropy_with_integer_labels(out, y),
         code=lambda a: "optax.softmax_cross_entropy_with_integer_labels(out, y)"),
)


@dataclass(frozen=True)
class Metric(Entry):
    """A metric is one of three kinds, by which of these it sets:

    `per_example(predictions, labels, task, lib)`: one value per example, averaged over the split.
    Predictions are probabilities for classification losses, outputs for regression. `code(task)`
    is the same written out for `--emit py`: an expression of `pred` and `y`.

    `per_class(tp, predicted, actual, ratio)`: a score per class from the split's confusion matrix,
    counted exactly over the whole split (`tp` the right predictions of each class, `predicted` and
    `actual` how often it was predicted and is true; `ratio(a, b)` is a / b, 0 where b is 0, as
    scikit-learn's `zero_division=0`), then the macro average over the classes that occur in the
    labels or the predictions (scikit-learn's classes), or, for a binary output, the positive
    class's score (over several labels: their mean). `code` is the same expression as text.

    `ranks`: computed from the split's scores as a whole (the rank-based AUC, `runtime/measures`)."""

    needs_classification: bool = False
    needs_binary: bool = False  # a binary loss with one output unit
    higher_is_better: bool = False
    per_example: Callable[..., Any] | None = None
    per_class: Callable[..., Any] | None = None
    ranks: bool = False
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
    Metric("accuracy", "fraction of examples whose predicted class is right", aliases=("acc",),
           example="metrics accuracy",
           needs_classification=True, higher_is_better=True, per_example=_accuracy, code=_code_accuracy),
    Metric("mse", "mean squared error", example="metrics mse",
           per_example=lambda p, y, task, lib: lib.jnp.mean((p - _as_target(p, y, task, lib)) ** 2, axis=-1),
           code=lambda task: f"jnp.mean((pred - {_code_target(task)}) ** 2, axis=-1)"),
    Metric("mae", "mean absolute error", example="metrics mae",
           per_example=lambda p, y, task, lib: lib.jnp.mean(lib.jnp.abs(p - _as_target(p, y, task, lib)), axis=-1),
           code=lambda task: f"jnp.mean(jnp.abs(pred - {_code_target(task)}), axis=-1)"),
    Metric("precision", "of the examples predicted in a class, the fraction truly in it (macro over classes; "
           "binary: of the positive class), over the whole split", example="metrics precision",
           needs_classification=True, higher_is_better=True,
           per_class=lambda tp, predicted, actual, ratio: ratio(tp, predicted), code=lambda task: "ratio(tp, predicted)"),
    Metric("recall", "of the examples in a class, the fraction predicted in it (macro over classes; binary: of the "
           "positive class), over the whole split", example="metrics recall",
           needs_classification=True, higher_is_better=True,
           per_class=lambda tp, predicted, actual, ratio: ratio(tp, actual), code=lambda task: "ratio(tp, actual)"),
    Metric("f1", "the harmonic mean of precision and recall (macro over classes; binary: of the positive class), "
           "over the whole split", example="metrics f1",
           needs_classification=True, higher_is_better=True,
           per_class=lambda tp, predicted, actual, ratio: ratio(2 * tp, predicted + actual),
           code=lambda task: "ratio(2 * tp, predicted + actual)"),
    Metric("auc", "area under the ROC curve of a binary classifier: the chance that a positive example scores above "
           "a negative one (ties count half), from the ranks of the whole split's scores", example="metrics auc",
           needs_classification=True, needs_binary=True, higher_is_better=True, ranks=True),
)
