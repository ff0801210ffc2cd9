"""What training weighs and reports beyond a per-example mean: balanced class weights, the kernel
penalties (`l1=`, `l2=`), and the metrics computed over a whole split at once.

Whole-split metrics are exact, never averages of per-batch values. `precision`, `recall` and `f1`
come from the split's confusion matrix: every batch adds its counts (integers, so the sum is exact)
to the epoch's or the evaluation's running sums on the device, and the host takes the ratios of
the final counts. `auc` needs every score of the split at once: each batch gives its scores,
labels and padding mask as rows, gathered into one array per split (a scan's outputs in an epoch,
the chunks' rows joined in an evaluation), and the host ranks them (`rank_auc`). The emitted
program (`--emit py`, `emit_parts`) spells out the same functions.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlc.compiler import ir, trainingfacts
from dlc.compiler import registry as reg

# The keys of a batch's sums that are no mean: the confusion counts and the gathered rows.
CONFUSION, ROWS = "confusion", "rows"


def confusion(pred: jax.Array, y: jax.Array, mask: jax.Array, task: str, shape: tuple[int, int, int]) -> jax.Array:
    """A batch's confusion counts (int32, real rows only): [matrix, true class, predicted class]."""
    rows = mask.astype(jnp.int32)
    if task == "categorical":
        return jnp.zeros(shape, jnp.int32).at[0, y, jnp.argmax(pred, axis=-1)].add(rows)
    truth, guess = (y > 0.5).astype(jnp.int32), (pred > 0.5).astype(jnp.int32)
    unit = jnp.broadcast_to(jnp.arange(shape[0]), truth.shape)
    return jnp.zeros(shape, jnp.int32).at[unit, truth, guess].add(rows[:, None])


def batch_rows(pred: jax.Array, y: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """What `auc` gathers of a batch: the score and label of its one unit, and the padding mask."""
    return {"score": pred[:, 0], "label": y[:, 0].astype(jnp.float32), "mask": mask}


def combine(totals: dict | None, sums: dict, axis: int = 0) -> dict:
    """Running sums with one more batch's or chunk's: counts added, rows joined (along `axis`: 1
    where a sweep's member axis comes first)."""
    if totals is None:
        return sums
    return {k: jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=axis), totals[k], v) if k == ROWS
            else totals[k] + v for k, v in sums.items()}


def member(fetched: dict, i: int) -> dict:
    """Member i's part of a sweep's fetched sums (every array's first axis is the member's)."""
    return jax.tree.map(lambda leaf: leaf[i], fetched)


def means(totals: dict, n: int) -> dict:
    """The mean of every summed quantity over `n` examples, in the program; counts and rows as they are."""
    return {k: v if k in (CONFUSION, ROWS) else v / n for k, v in totals.items()}


def flat_rows(rows: dict) -> dict:
    """Rows gathered as (steps, batch) by a scan, as one axis."""
    return {k: v.reshape(-1) for k, v in rows.items()}


def logs(program: ir.Program, fetched: dict, n: int | None, prefix: str = "") -> dict[str, float]:
    """The loss and every metric of a split from its fetched sums, by name in alphabetical order
    (the order of a fetched dict, as history.csv's columns have always been): means divided by `n`
    here (None: the program divided them already), the others computed from the counts and rows."""

    def mean(key: str) -> float:
        return float(fetched[key]) if n is None else float(fetched[key]) / n

    out = {f"{prefix}loss": mean("loss")}
    for entry in (reg.lookup("metric", name) for name in program.metrics):
        if entry.per_class is not None:
            value = class_average(np.asarray(fetched[CONFUSION]), entry.per_class, program.task == "binary")
        elif entry.ranks:
            value = rank_auc(*(np.asarray(fetched[ROWS][k]) for k in ("score", "label", "mask")))
        else:
            value = mean(entry.name)
        out[f"{prefix}{entry.name}"] = value
    return dict(sorted(out.items()))


def ratio(a: Any, b: Any) -> np.ndarray:
    """a / b, and 0 where b is 0 (scikit-learn's `zero_division=0`)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def class_average(counts: np.ndarray, per_class: Any, binary: bool) -> float:
    """A per-class score from confusion counts [matrix, truth, prediction]: for a binary output the
    positive class's (the mean over several labels), else the macro average over the classes that
    occur in the labels or the predictions (as scikit-learn's `average="macro"` counts them)."""
    tp = np.diagonal(counts, axis1=1, axis2=2)
    predicted, actual = counts.sum(axis=1), counts.sum(axis=2)
    scores = per_class(tp, predicted, actual, ratio)
    if binary:
        return float(np.mean(scores[:, 1]))
    present = (predicted + actual)[0] > 0
    return float(np.mean(scores[0][present])) if present.any() else 0.0


def rank_auc(score: np.ndarray, label: np.ndarray, mask: np.ndarray) -> float:
    """The exact area under the ROC curve of the real rows: the Mann-Whitney statistic, (sum of the
    positives' ranks - P(P+1)/2) / (P N), ranks 1-based over all scores with ties given their average
    rank (so a tied pair counts half). NaN when the split holds one class only."""
    real = mask > 0
    s, positive = score[real].astype(np.float64), label[real] > 0.5
    p = int(positive.sum())
    negatives = len(s) - p
    if p == 0 or negatives == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts) + (counts + 1) / 2.0
    return float((ranks[inverse.reshape(-1)][positive].sum() - p * (p + 1) / 2.0) / (p * negatives))


# --- class weights ----------------------------------------------------------------------------


def class_weights(program: ir.Program, y: np.ndarray) -> tuple[float, ...] | None:
    """`class_weight=balanced`: each class's weight n / (classes x its examples) over the training
    labels `y` as encoded (class indices; 0/1 for a binary output), 0 for a class with none; None
    without the option."""
    if program.loss is None or program.loss.args.get("class_weight") != "balanced":
        return None
    classes = program.output_shape[-1] if program.task == "categorical" else 2
    y = np.asarray(y).reshape(len(y), -1)[:, 0]
    index = y.astype(np.int64) if program.task == "categorical" else (y > 0.5).astype(np.int64)
    counts = np.bincount(index, minlength=classes)
    return tuple(len(index) / (classes * int(c)) if c else 0.0 for c in counts)


def unknown_class_weights(program: ir.Program) -> tuple[float, ...] | None:
    """Weights of 1 for a program that weighs classes but whose data is not loaded (`--emit hlo`
    traces the epoch with them: the weights are constants the training split decides); None for
    one that does not weigh them. Training always has the split's (`Session.prepare`)."""
    if program.loss is None or program.loss.args.get("class_weight") != "balanced":
        return None
    return (1.0,) * (program.output_shape[-1] if program.task == "categorical" else 2)


def example_weights(weights: np.ndarray, y: jax.Array, task: str) -> jax.Array:
    """The weight of each example of a batch: its class's."""
    index = y if task == "categorical" else (y[:, 0] > 0.5).astype(jnp.int32)
    return jnp.asarray(weights)[index]


# --- kernel penalties -------------------------------------------------------------------------



def without_penalties(args: dict) -> dict:
    """A layer's arguments with its penalties at 0: what sweep members that train together may differ in."""
    return {**args, **{k: 0.0 for k in ("l1", "l2") if k in args}}


def member_penalties(members: list[ir.Program]) -> list[dict[str, tuple[np.float32, np.float32]]]:
    """Each sweep member's (l1, l2) on every layer any member penalizes (0 where it does not), so
    that all have one layout: a zero coefficient adds exactly nothing to the loss or the gradient."""
    each = [trainingfacts.penalty_coefficients(m) for m in members]
    names = list(dict.fromkeys(name for coefficients in each for name in coefficients))
    return [{name: tuple(np.float32(c) for c in coefficients.get(name, (0.0, 0.0))) for name in names}
            for coefficients in each]


def penalty(params: Any, coefficients: dict[str, tuple[Any, Any]]) -> jax.Array | None:
    """l1 x sum |w| + l2 x sum w^2 over each penalized layer's parameters but its biases (a recurrent
    cell's input and recurrent kernels both), in model order; None when there are none. A
    coefficient may be an array (a sweep member's); a Python 0 adds no term."""
    total = None
    for name, (l1, l2) in coefficients.items():
        for path, w in jax.tree_util.tree_leaves_with_path(params[name]):
            if getattr(path[-1], "key", None) == "bias":
                continue
            for c, term in ((l1, jnp.abs), (l2, jnp.square)):
                if isinstance(c, float) and c == 0.0:
                    continue
                part = c * jnp.sum(term(w))
                total = part if total is None else total + part
    return total


# --- the learning rate ------------------------------------------------------------------------


def rate(opt_state: Any) -> Any:
    """The learning rate in an optimizer state: the injected `step_size` that scales every update."""
    return optax.tree_utils.tree_get(opt_state, "step_size")


def with_rate(opt_state: Any, step_size: Any) -> Any:
    """The optimizer state with another learning rate (the schedule's factor stays as it is)."""
    return optax.tree_utils.tree_set(opt_state, step_size=step_size)


def epoch_rate(step_size: Any, factor: Any) -> float:
    """The rate of an epoch's last update, as float32 computes it (`step_size` x the schedule's
    factor), written with the fewest digits that read back as that float32 (0.001, not
    0.0010000000474974513)."""
    return float(np.format_float_scientific(np.float32(step_size) * np.float32(factor), unique=True))
