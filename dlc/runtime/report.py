"""`dlc eval --report`: how a trained run does on one split, class by class or residual by residual,
computed exactly over the whole split from its predictions, and the figure of it in the run folder.

A classifier's report is scikit-learn's `classification_report` and `confusion_matrix` (the tests
hold every number to theirs), counted here with NumPy: a confusion matrix is one `bincount`, and
every other number is a ratio of its rows, columns and diagonal, so the runtime needs no
scikit-learn to report. A class with nothing predicted (or no examples) has precision (recall) 0,
as scikit-learn's `zero_division=0`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dlc.runtime.data import Prepared, Split
    from dlc.runtime.session import Session


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_report(true: np.ndarray, predicted: np.ndarray, classes: list) -> dict:
    """Per-class precision, recall, F1 and support, accuracy, their macro and support-weighted
    means, and the confusion matrix (`confusion[i][j]`: examples of class i predicted as j), for
    class indices `true` and `predicted` into `classes`."""
    k = len(classes)
    confusion = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)
    hits, support, guessed = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    scores = {"precision": _ratio(hits, guessed), "recall": _ratio(hits, support),
              "f1": _ratio(2 * hits, support + guessed)}  # 2PR/(P+R), from the counts
    weights = support / max(support.sum(), 1)
    return {
        "kind": "classification",
        "examples": int(support.sum()),
        "classes": [{"class": label, **{name: float(s[i]) for name, s in scores.items()}, "support": int(support[i])}
                    for i, label in enumerate(classes)],
        "accuracy": float(hits.sum() / max(support.sum(), 1)),
        "macro_avg": {name: float(s.mean()) for name, s in scores.items()},
        "weighted_avg": {name: float((s * weights).sum()) for name, s in scores.items()},
        "confusion": confusion.tolist(),
    }


def regression_report(true: np.ndarray, predicted: np.ndarray) -> dict:
    """Statistics of the residuals (true − predicted) over every output of every example, and R²
    per output, averaged (scikit-learn's `r2_score`: 1 for a constant target predicted exactly,
    0 for one predicted otherwise)."""
    true, predicted = true.reshape(len(true), -1).astype(np.float64), predicted.reshape(len(true), -1)
    residual = true - predicted
    spread = ((true - true.mean(axis=0)) ** 2).sum(axis=0)
    missed = (residual ** 2).sum(axis=0)
    r2 = np.where(spread > 0, 1 - missed / np.where(spread > 0, spread, 1), np.where(missed == 0, 1.0, 0.0))
    return {
        "kind": "regression",
        "examples": len(true),
        "residuals": {"mean": float(residual.mean()), "std": float(residual.std()),
                      "mae": float(np.abs(residual).mean()), "rmse": float(np.sqrt((residual ** 2).mean())),
                      "median_abs": float(np.median(np.abs(residual))), "max_abs": float(np.abs(residual).max()),
                      "r2": float(r2.mean())},
    }


def held_out(prepared: Prepared) -> tuple[str, Split]:
    """The split a report of the spec's own data is about: test, else validation, else train (as
    `Program.evaluate()` with no arguments)."""
    for name, split in (("test", prepared.test), ("val", prepared.val), ("train", prepared.train)):
        if split is not None and len(split.x):
            return name, split
    raise ValueError("the run's data has no examples to report on")


def write_report(session: Session, run_dir: Path, split: Split, on: dict[str, str]) -> dict:
    """The report of the trained `session` on `split`, which `on` names (`{"split": "test"}` or
    `{"file": "new.csv"}`), with its figure written into the run folder (`figure`: its path); a
    ValueError for a model it cannot report on (several labels per example)."""
    from dlc.runtime.plots import confusion_figure, residuals_figure
    from dlc.runtime.runfolder import write_figure

    kept = "the rest of the run folder is unchanged"
    outputs = session.trainer.predict(session.state.params, session.state.batch_stats, split.x)
    name = on.get("file") or f"{on['split']} split"
    title = f"{run_dir.resolve().name}: {name} ({len(split.x)} examples)"
    task, classes = session.program.task, session.classes
    if task == "regression":
        found = regression_report(split.y, outputs)
        figure = write_figure(run_dir, "residuals.png", residuals_figure(split.y, outputs, title), kept)
    elif classes is not None:
        one_unit = outputs.shape[-1] == 1  # a sigmoid: the probability of the second class
        predicted = (outputs[:, 0] > 0.5).astype(np.int64) if one_unit else np.argmax(outputs, axis=-1)
        true = split.y.reshape(-1).astype(np.int64)
        found = classification_report(true, predicted, classes)
        figure = write_figure(run_dir, "confusion.png",
                              confusion_figure(found["confusion"], [str(c) for c in classes], title), kept)
    else:
        raise ValueError("--report covers classifiers of one label per example and regression; this model "
                         "predicts several labels per example")
    return {**on, **found, "figure": str(figure)}
