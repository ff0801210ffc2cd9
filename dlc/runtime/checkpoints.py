"""Checkpoints of a training run, for resuming it: Orbax's CheckpointManager, which writes each
step to a temporary folder and renames it when complete, so a process killed at any moment
leaves the last complete checkpoint readable. Each step holds the train state (parameters,
batch statistics, optimizer state), the best parameters so far, and the host-side progress
(epoch, history, early-stopping state) with the spec's hash and the run's settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dlc.runtime.train import Progress, TrainState

KEEP = 2  # the last complete step, and the one being written


class TrainingCheckpoints:
    def __init__(self, folder: Path, identity: dict, interval: float = 2.0):
        """`identity`: what must match to resume (spec hash, seed, epochs); `interval`: save at
        most once per this many seconds (forced saves excepted), so that tiny epochs stay fast."""
        import absl.logging
        import orbax.checkpoint as ocp

        # Orbax logs a warning when it clears a step a killed process left half-written: expected here.
        absl.logging.set_verbosity(absl.logging.ERROR)
        self.ocp = ocp
        self.folder = folder.absolute()
        self.identity = identity
        self.interval = interval
        self.last_save = -float("inf")
        self.manager = ocp.CheckpointManager(self.folder, options=ocp.CheckpointManagerOptions(max_to_keep=KEEP))

    def save(self, state: TrainState, best: Any, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_save < self.interval:
            return
        self.last_save = now
        args = self.ocp.args
        items = {"state": args.StandardSave({"params": state.params, "batch_stats": state.batch_stats,
                                              "opt_state": state.opt_state}),
                 "meta": args.JsonSave({**self.identity, **progress.to_json(), "has_best": best is not None})}
        if best is not None:
            items["best"] = args.StandardSave(best)
        self.manager.save(progress.epoch, args=args.Composite(**items), force=True)

    def latest_meta(self) -> dict | None:
        step = self.manager.latest_step()
        if step is None:
            return None
        return self.manager.restore(step, args=self.ocp.args.Composite(meta=self.ocp.args.JsonRestore()))["meta"]

    def restore(self, abstract: TrainState) -> tuple[TrainState, Any, Progress]:
        """The latest complete step as (state, best arrays or None, progress)."""
        step = self.manager.latest_step()
        meta = self.latest_meta()
        args = self.ocp.args
        tree = {"params": abstract.params, "batch_stats": abstract.batch_stats, "opt_state": abstract.opt_state}
        items = {"state": args.StandardRestore(tree)}
        if meta.get("has_best"):
            items["best"] = args.StandardRestore({"params": abstract.params, "batch_stats": abstract.batch_stats})
        restored = self.manager.restore(step, args=args.Composite(**items))
        state = TrainState(restored["state"]["params"], restored["state"]["batch_stats"],
                           restored["state"]["opt_state"])
        best = restored["best"] if meta.get("has_best") else None
        return state, best, Progress.from_json(meta)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
