"""The numbers of `dlc eval --report`, held to scikit-learn's on the same predictions (dlc counts
them with NumPy), and what curves.png shows: the best epoch, an early stop, and a log scale where
the loss spans decades."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from dlc.runtime.plots import curves_figure, spans_decades
from dlc.runtime.report import classification_report, regression_report

SCORES = ("precision", "recall", "f1")


def assert_as_scikit_learn(true: np.ndarray, predicted: np.ndarray, classes: list) -> None:
    ours = classification_report(true, predicted, classes)
    theirs = sk.classification_report(true, predicted, labels=range(len(classes)), output_dict=True,
                                      zero_division=0)
    for i, row in enumerate(ours["classes"]):
        assert row["class"] == classes[i]
        assert row["support"] == theirs[str(i)]["support"]
        assert [row[s] for s in SCORES] == pytest.approx([theirs[str(i)][f"{s}-score" if s == "f1" else s]
                                                          for s in SCORES], abs=1e-12)
    for ours_name, their_name in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        assert [ours[ours_name][s] for s in SCORES] == pytest.approx(
            [theirs[their_name][f"{s}-score" if s == "f1" else s] for s in SCORES], abs=1e-12)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(true, predicted), abs=1e-12)
    assert ours["confusion"] == sk.confusion_matrix(true, predicted, labels=range(len(classes))).tolist()
    assert ours["examples"] == len(true)


@pytest.mark.parametrize("seed", range(5))
def test_a_categorical_report_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 5, 200)
    predicted = np.where(rng.random(200) < 0.6, true, rng.integers(0, 5, 200))
    assert_as_scikit_learn(true, predicted, ["a", "b", "c", "d", "e"])


def test_classes_never_predicted_or_never_seen_count_as_scikit_learns_zero_division_0():
    true = np.array([0, 0, 1, 1, 1, 3])  # class 2 has no examples
    predicted = np.array([0, 1, 1, 1, 0, 0])  # nothing is predicted as 2 or 3
    assert_as_scikit_learn(true, predicted, [10, 20, 30, 40])
    report = classification_report(true, predicted, [10, 20, 30, 40])
    assert report["classes"][2] == {"class": 30, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_a_binary_report_is_scikit_learns():
    rng = np.random.default_rng(7)
    true = rng.integers(0, 2, 101)
    assert_as_scikit_learn(true, np.where(rng.random(101) < 0.7, true, 1 - true), ["no", "yes"])


@pytest.mark.parametrize("outputs", [1, 3])
def test_a_regression_report_is_scikit_learns(outputs):
    rng = np.random.default_rng(outputs)
    true = rng.normal(size=(80, outputs)) * 10
    predicted = (true + rng.normal(size=true.shape)).astype(np.float32)
    stats = regression_report(true, predicted)["residuals"]
    residual = true - predicted
    assert stats["mae"] == pytest.approx(sk.mean_absolute_error(true, predicted), rel=1e-9)
    assert stats["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(true, predicted)), rel=1e-9)
    assert stats["max_abs"] == pytest.approx(np.abs(residual).max(), rel=1e-9)
    assert stats["median_abs"] == pytest.approx(np.median(np.abs(residual)), rel=1e-9)
    assert (stats["mean"], stats["std"]) == pytest.approx((residual.mean(), residual.std()), rel=1e-9)
    assert stats["r2"] == pytest.approx(sk.r2_score(true, predicted), rel=1e-9)


def test_r2_of_a_constant_target_is_scikit_learns():
    constant = np.full((4, 1), 3.0)
    for predicted in (constant, constant + 1):
        assert regression_report(constant, predicted)["residuals"]["r2"] == sk.r2_score(constant, predicted)


def history(losses: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "accuracy": 0.5, "loss": loss, "val_accuracy": 0.5, "val_loss": loss * 1.1,
             "epoch_time": 0.01} for i, loss in enumerate(losses)]


def test_a_loss_that_spans_more_than_two_decades_is_drawn_on_a_log_scale():
    assert spans_decades([2.3, 0.5, 0.01]) and not spans_decades([2.3, 0.5, 0.05])
    assert not spans_decades([1.0, 0.0, 1e-6])  # a zero has no place on a log axis
    falling = curves_figure(history([2.3, 0.3, 0.01]), "t")
    assert [ax.get_yscale() for ax in falling.axes] == ["linear", "log"]  # accuracy, loss
    flat = curves_figure(history([2.3, 1.0, 0.5]), "t")
    assert [ax.get_yscale() for ax in flat.axes] == ["linear", "linear"]


def legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_the_best_epoch_and_an_early_stop_are_marked_on_every_panel():
    figure = curves_figure(history([1.0, 0.8, 0.9, 0.95]), "t", best_epoch=2, stopped_early=True)
    for ax in figure.axes:
        assert legend(ax) == ["train", "validation", "best epoch 2", "early stop (epoch 4)"]
        marks = [line.get_xdata()[0] for line in ax.get_lines()[2:]]
        assert marks == [2, 4]
    unmarked = curves_figure(history([1.0, 0.8]), "t")
    assert all(legend(ax) == ["train", "validation"] for ax in unmarked.axes)
