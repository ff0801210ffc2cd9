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
    plateau: dict = field(default_factory=lambda: dict(Plateau.START))  # `schedule plateau`'s state

    def to_json(self) -> dict:
        """A snapshot: Orbax writes it in the background while training appends to the history."""
        return {"epoch": self.epoch, "history": [dict(row) for row in self.history], "best": None if math.isnan(self.best) else self.best,
                "best_epoch": self.best_epoch, "waited": self.waited, "plateau": dict(self.plateau)}

    @classmethod
    def from_json(cls, meta: dict) -> Progress:
        best = meta.get("best")
        plateau = meta.get("plateau") or Plateau.START  # a run saved before plateaus were
        return cls(int(meta["epoch"]), list(meta["history"]), math.nan if best is None else float(best),
                   int(meta["best_epoch"]), int(meta["waited"]),
                   {"best": None if plateau["best"] is None else float(plateau["best"]),
                    "waited": int(plateau["waited"])})


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
        value, _ = monitored(self.rule, logs)
        if self.improved(value):
            self.progress.best, self.progress.best_epoch, self.progress.waited = value, epoch, 0
            return True, False
        self.progress.waited += 1
        return False, self.finished


def monitored(rule: ir.EarlyStop | None, logs: dict[str, float]) -> tuple[float, str]:
    """The quantity early stopping (and a plateau schedule) watches, and "min" or "max": the
    `early_stop` monitor, else `val_loss` where there is validation data, else `loss`."""
    if rule is not None:
        return logs[rule.monitor], rule.mode
    return logs["val_loss" if "val_loss" in logs else "loss"], "min"


@dataclass
class Plateau:
    """`schedule plateau`: whether to multiply the learning rate by `factor` after this epoch: once
    the monitored quantity has not improved by `min_delta` for `patience` epochs, the count then
    starting again (Keras's `ReduceLROnPlateau` without cooldown). Its count lives in the run's
    `Progress` (`progress.plateau`) and the rate itself in the optimizer state (the injected
    `step_size`, which the loop multiplies), so a resumed or continued run goes on with both."""

    START = {"best": None, "waited": 0}

    args: dict
    rule: ir.EarlyStop | None
    state: dict

    def update(self, logs: dict[str, float]) -> bool:
        """Count this epoch; whether the rate is to be reduced now."""
        value, mode = monitored(self.rule, logs)
        best, delta = self.state["best"], self.args["min_delta"]
        if best is None or (value > best + delta if mode == "max" else value < best - delta):
            self.state.update(best=value, waited=0)
            return False
        self.state["waited"] += 1
        if self.state["waited"] < self.args["patience"]:
            return False
        self.state["waited"] = 0
        return True


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
