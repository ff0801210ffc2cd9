"""The host side of a run between epochs: its `Progress` (what a checkpoint holds beside the
arrays), early stopping on it, and the two ways training ends before its last epoch: `Interrupted`
on request, `Diverged` when the loss runs away."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dlc.compiler import ir


@dataclass
class Progress:
    """The host side of a run, which a checkpoint holds beside the arrays: with the seed, it is
    all a resumed run needs to continue exactly where the interrupted one stopped."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = math.nan
    best_epoch: int = 0
    waited: int = 0

    def to_json(self) -> dict:
        """A snapshot: Orbax writes it in the background while training appends to the history."""
        return {"epoch": self.epoch, "history": [dict(row) for row in self.history], "best": None if math.isnan(self.best) else self.best,
                "best_epoch": self.best_epoch, "waited": self.waited}

    @classmethod
    def from_json(cls, meta: dict) -> Progress:
        best = meta.get("best")
        return cls(int(meta["epoch"]), list(meta["history"]), math.nan if best is None else float(best),
                   int(meta["best_epoch"]), int(meta["waited"]))


@dataclass
class EarlyStopping:
    """Host-side bookkeeping on the per-epoch scalars: is this epoch the best, and should we stop.
    Its state is the run's `Progress` (best value, best epoch, epochs waited), which checkpoints hold."""

    rule: ir.EarlyStop | None
    progress: Progress = field(default_factory=Progress)

    @property
    def best_epoch(self) -> int:
        return self.progress.best_epoch

    @property
    def finished(self) -> bool:
        """Patience ran out (a resumed run that had stopped early trains no more)."""
        return self.rule is not None and self.progress.waited >= self.rule.patience

    def improved(self, value: float) -> bool:
        best = self.progress.best
        if math.isnan(best):
            return True
        delta = self.rule.min_delta if self.rule else 0.0
        if self.rule and self.rule.mode == "max":
            return value > best + delta
        return value < best - delta

    def update(self, epoch: int, logs: dict[str, float]) -> tuple[bool, bool]:
        """(this epoch is the best so far, training should stop now)."""
        monitor = self.rule.monitor if self.rule else ("val_loss" if "val_loss" in logs else "loss")
        value = logs[monitor]
        if self.improved(value):
            self.progress.best, self.progress.best_epoch, self.progress.waited = value, epoch, 0
            return True, False
        self.progress.waited += 1
        return False, self.finished


class Interrupted(Exception):
    """Training stopped at a safe point on request (Ctrl-C); the state is checkpointed."""

    def __init__(self, epoch: int, history: list[dict[str, float]]):
        super().__init__(f"interrupted after epoch {epoch}")
        self.epoch, self.history = epoch, history


# A training loss this many times the loss before the first update is diverging, even while finite:
# too large a learning rate sends it to millions in an epoch, then the network dies at chance.
DIVERGING_GROWTH = 1e3


class Diverged(Exception):
    """A loss stopped being finite, or grew by orders of magnitude from where training started
    (`start`, the loss before the first update). The parameters of that epoch are not kept."""

    def __init__(self, epoch: int, quantity: str, value: float, history: list[dict[str, float]],
                 start: float | None = None):
        what = f"`{quantity}` is {value}" if start is None else \
            f"`{quantity}` grew from {start:.4g} before training to {value:.4g}"
        super().__init__(f"training diverged at epoch {epoch}: {what}")
        self.epoch, self.quantity, self.value, self.history, self.start = epoch, quantity, value, history, start


def divergence(epoch: int, logs: dict[str, float], start: float, history: list) -> Diverged | None:
    """The `Diverged` of an epoch whose `logs` show a loss that is not finite or grew past
    DIVERGING_GROWTH times the loss before training (`start`), with the history up to it; else None."""
    for quantity in ("loss", "val_loss"):
        if quantity in logs and not math.isfinite(logs[quantity]):
            return Diverged(epoch, quantity, logs[quantity], history + [logs])
    if math.isfinite(start) and logs["loss"] > DIVERGING_GROWTH * max(start, 1e-6):
        return Diverged(epoch, "loss", logs["loss"], history + [logs], start=start)
    return None
