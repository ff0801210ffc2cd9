"""The figures of a run folder, drawn with matplotlib off screen and returned as PNG bytes (the run
folder code writes them atomically): `curves.png`, the loss and metrics per epoch; from
`dlc eval --report`, `confusion.png` (classification) or `residuals.png` (regression); and a
sweep folder's `sweep.png`, every member's validation curve.

A figure is built by a function that returns it, so tests can read what it shows (scales, marks)
without comparing pixels; `png` renders and closes it.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the off-screen backend)
import numpy as np  # noqa: E402

# A panel whose values are all positive and whose largest is more than this many times its
# smallest gets a log scale: a loss that falls from 2.3 to 0.01 is a flat line after the first
# epochs on a linear axis, and a straight one on a log axis, where later progress stays visible.
LOG_SCALE_SPAN = 100.0
# Above this many members a sweep's legend names only the best ones; the others are drawn grey.
LEGEND_MEMBERS = 12
# Above this many classes the confusion matrix's cells are too small to hold their counts.
ANNOTATED_CLASSES = 20


def spans_decades(values: list[float]) -> bool:
    """Whether values are plotted on a log scale (see LOG_SCALE_SPAN)."""
    finite = [v for v in values if np.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) > LOG_SCALE_SPAN * min(finite)


def curves_figure(history: list[dict], title: str, best_epoch: int | None = None,
                  stopped_early: bool = False):
    """Loss and each metric per epoch, training and validation, one panel each. `best_epoch` (the
    epoch early stopping judged best, None without `early_stop`) is a dashed line on every panel,
    and a run that stopped early ends in a dotted line at its last epoch."""
    names = [k for k in history[0] if k not in ("epoch", "epoch_time") and not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, name in zip(axes[0], names):
        series = {"train": name, "validation": f"val_{name}"}
        plotted = [row[key] for key in series.values() if key in history[0] for row in history]
        for label, key in series.items():
            if key in history[0]:
                ax.plot(epochs, [row[key] for row in history], label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        if stopped_early:
            ax.axvline(epochs[-1], color="tab:red", linestyle=":", linewidth=1.2,
                       label=f"early stop (epoch {epochs[-1]})")
        if spans_decades(plotted):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_figure(curves: list[tuple[str, list[dict], bool]], monitor: str, title: str, best: str | None):
    """Every member's `monitor` per epoch, one line each, `curves` ranked best first (label,
    history, whether it diverged). The best member (`best`, None when none trained) is drawn
    thick and on top; members past LEGEND_MEMBERS in the ranking grey and unnamed; a diverged
    member dashed (its values that are not finite left out), on a log scale as `curves.png`'s
    panels where the values span decades."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plotted: list[float] = []
    others = 0
    for rank, (label, history, diverged) in enumerate(curves):
        values = [float(row.get(monitor, np.nan)) for row in history]
        values = [v if np.isfinite(v) else np.nan for v in values]
        plotted += values
        style = {"linestyle": "--" if diverged else "-"}
        if label == best:
            style.update(linewidth=2.6, zorder=3, color="black", label=f"{label} (best)")
        elif rank < LEGEND_MEMBERS:
            style.update(linewidth=1.1, alpha=0.8, label=label)
        else:
            style.update(linewidth=0.8, alpha=0.5, color="tab:gray", label=None if others else "other members")
            others += 1
        ax.plot([row["epoch"] for row in history], values, **style)
    if spans_decades(plotted):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(monitor)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"{title}: {monitor} of {len(curves)} members")
    fig.tight_layout()
    return fig


def confusion_figure(confusion: list[list[int]], classes: list[str], title: str):
    """The confusion matrix, true classes down, predicted across, each cell's count written in it
    (up to ANNOTATED_CLASSES classes); colour by the share of the true class, so a small class's
    errors show as plainly as a large one's."""
    counts = np.asarray(confusion)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(3 + 0.45 * len(classes), 16)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=90 if len(classes) > 8 else 0)
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(classes) <= ANNOTATED_CLASSES:
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def residuals_figure(true: np.ndarray, predicted: np.ndarray, title: str):
    """Residuals (true − predicted) against the prediction, and their histogram: a trend or a
    funnel in the first shows what the model misses, the second how far off it is."""
    residual = (true - predicted).reshape(-1)
    fig, (scatter, histogram) = plt.subplots(1, 2, figsize=(10, 3.8))
    scatter.scatter(predicted.reshape(-1), residual, s=8, alpha=0.5)
    scatter.axhline(0, color="black", linewidth=0.8)
    scatter.set_xlabel("predicted")
    scatter.set_ylabel("residual (true − predicted)")
    histogram.hist(residual, bins=min(50, max(10, len(residual) // 10)))
    histogram.set_xlabel("residual (true − predicted)")
    histogram.set_ylabel("examples")
    for ax in (scatter, histogram):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open one alive)."""
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)
    return image.getvalue()
