"""Checkpoints of a training run, for resuming it: Orbax's CheckpointManager, which writes each
step to a temporary folder and renames it when complete, so a process killed at any moment
leaves the last complete checkpoint readable. Each step holds the train state (parameters,
batch statistics, optimizer state), the best parameters so far, and the host-side progress
(epoch, history, early-stopping state) with the spec's hash and the run's settings."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlc.runtime.distributed import agreed, together
from dlc.runtime.stopping import Progress
from dlc.runtime.storage import StorageError, host_copies, is_step, orbax, refuse_link, storage_faults, writing_alone
from dlc.runtime.train import TrainState

KEEP = 2  # the last complete step, and the one being written


class CheckpointWarning(UserWarning):
    """A checkpoint step that could not be read, skipped for the newest complete one before it."""


@dataclasses.dataclass(frozen=True)
class _StepsOnly:
    """Orbax's standard step names, seeing only real steps: it would take a stray `training/1000`
    for the newest step, and delete a small-numbered stray as an old one."""

    standard: Any

    def build_name(self, step: int) -> str:
        return self.standard.build_name(step)

    def find_all(self, base_path) -> Iterator[Any]:
        return (found for found in self.standard.find_all(base_path) if is_step(Path(str(found.path))))

    def find_step(self, base_path, step: int) -> Any:
        found = self.standard.find_step(base_path, step)
        if not is_step(Path(str(found.path))):
            raise ValueError(f"no checkpoint of step {step} in {base_path}")
        return found


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _damage(meta: object, step: int) -> str | None:
    """What is wrong with a step's progress record, read back from disk, or None: it decides
    where training continues and the history it keeps."""
    if not isinstance(meta, dict):
        return "`meta` is not a record"
    for name in ("epoch", "best_epoch", "waited"):
        if not _count(meta.get(name)):
            return f"`meta.{name}` is not a count"
    history = meta.get("history")
    if meta["epoch"] != step or not isinstance(history, list) or len(history) != step:
        return f"`meta` does not hold the {step} epochs of its step"
    for number, row in enumerate(history, 1):
        if not isinstance(row, dict) or row.get("epoch") != number or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in row.items()):
            return f"`meta.history` row {number} is not an epoch's numbers"
    best = meta.get("best")
    if best is not None and not (isinstance(best, (int, float)) and not isinstance(best, bool) and math.isfinite(best)):
        return "`meta.best` is not a finite number"
    if not isinstance(meta.get("has_best"), bool):
        return "`meta.has_best` is not true or false"
    plateau = meta.get("plateau")  # absent in runs saved before `schedule plateau`
    if plateau is not None and not (isinstance(plateau, dict) and _count(plateau.get("waited")) and (
            plateau.get("best") is None or isinstance(plateau["best"], (int, float))
            and not isinstance(plateau["best"], bool) and math.isfinite(plateau["best"]))):
        return "`meta.plateau` is not a plateau's best value and count"
    return None


def refuse_linked_folder(folder: Path) -> None:
    """Orbax deletes old steps, and the run's lock is written there: through a linked folder, or a
    linked step, that would write or delete what the link points at, outside the run."""
    for path in [folder, *(folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ())]:
        refuse_link(path, "; replace it with the folder itself, or use another run folder")


class TrainingCheckpoints:
    def __init__(self, folder: Path, identity: dict, interval: float = 2.0):
        """`identity`: what must match to resume (spec hash, seed, epochs); `interval`: save at
        most once per this many seconds (forced saves excepted), so that tiny epochs stay fast."""
        self.ocp = ocp = orbax()
        self.folder = folder.absolute()
        self.identity = identity
        self.interval = interval
        self.last_save = -float("inf")
        self.writing: int | None = None  # the epoch whose save may still be in flight
        self.failed = False
        refuse_linked_folder(self.folder)
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, step_name_format=_StepsOnly(
            ocp.step.standard_name_format()), create=False, **writing_alone(ocp))
        with self._writing(None):
            self.folder.mkdir(parents=True, exist_ok=True)
            self.manager = ocp.CheckpointManager(self.folder, options=options)

    def _steps(self) -> list[int]:
        """The steps on disk, newest first."""
        if not self.folder.is_dir():
            return []
        return sorted((int(p.name) for p in self.folder.iterdir() if is_step(p)), reverse=True)

    def _writing(self, epoch: int | None) -> contextlib.AbstractContextManager:
        """A failed write as one StorageError naming the folder and the checkpoint kept."""
        return storage_faults(self.folder, self._kept, f"the checkpoint of epoch {epoch}" if epoch is not None
                              else "checkpoints", on_fault=self._failed)

    def _failed(self) -> None:
        self.failed = True

    def _kept(self) -> str:
        """What a failed write leaves to continue from (asked once it has failed)."""
        steps = self._steps()
        return f"the checkpoint of epoch {steps[0]} is kept: continue with --resume once it can be written" \
            if steps else "no checkpoint was completed"

    def save(self, state: TrainState, best: Any, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if not agreed(force or now - self.last_save >= self.interval):  # every process saves, or none
            return
        self.last_save = now
        args = self.ocp.args
        items = {"state": args.StandardSave(host_copies({"params": state.params, "batch_stats": state.batch_stats,
                                                         "opt_state": state.opt_state})),
                 "meta": args.JsonSave({**self.identity, **progress.to_json(), "has_best": best is not None})}
        if best is not None:
            items["best"] = args.StandardSave(host_copies(best))
        with together():  # a write that fails on one process of a distributed run stops them all
            with self._writing(self.writing):
                self.manager.wait_until_finished()
            self.writing = progress.epoch
            with self._writing(progress.epoch):
                self._check_writable()
                self.manager.save(progress.epoch, args=args.Composite(**items), force=True)

    def _check_writable(self) -> None:
        """Make and remove a folder where Orbax will make the step's: when Orbax's own attempt
        fails (read-only, full, the folder gone), its writer threads wait 5 minutes for a folder
        that never comes, and the process cannot exit until they give up."""
        probe = self.folder / ".dlc-write-check"
        with contextlib.suppress(FileNotFoundError):
            probe.rmdir()
        probe.mkdir()
        probe.rmdir()

    def restore(self, abstract: TrainState, same_run: Callable[[dict], None], damage: Callable = _damage,
                progress: Callable[[dict], Any] = Progress.from_json) -> tuple[TrainState, Any, Any] | None:
        """The newest complete, readable step as (state, best arrays or None, progress), or None
        when there is none (with a warning). Damaged steps newer than it are skipped, with a
        warning, and removed: training writes them again. `same_run` raises when a step's meta is
        of another run. `damage` and `progress` read the meta of another kind of step (a sweep
        group's, whose progress is every member's): what is wrong with it, and its progress."""
        args = self.ocp.args
        tree = {"params": abstract.params, "batch_stats": abstract.batch_stats, "opt_state": abstract.opt_state}
        best_tree = {"params": abstract.params, "batch_stats": abstract.batch_stats}
        skipped = []
        for step in self._steps():
            problem, meta = self._read(step, meta=args.JsonRestore())
            problem = problem or damage(meta["meta"], step)
            if problem is None:
                meta = meta["meta"]
                same_run(meta)
                items = {"state": args.StandardRestore(tree)}
                if meta["has_best"]:
                    items["best"] = args.StandardRestore(best_tree)
                problem, restored = self._read(step, **items)
            if problem is not None:
                skipped.append((step, problem))
                continue
            self._discard(skipped, f"continuing from epoch {step}")
            state = TrainState(restored["state"]["params"], restored["state"]["batch_stats"],
                               restored["state"]["opt_state"])
            return state, restored["best"] if meta["has_best"] else None, progress(meta)
        self._discard(skipped, "training starts again from epoch 1")
        if not skipped:
            warnings.warn(CheckpointWarning(f"`{self.folder}` holds no complete checkpoint: training starts again "
                                            "from epoch 1"), stacklevel=3)
        return None

    def _read(self, step: int, **items: Any) -> tuple[str | None, Any]:
        """(None, the items) of a step, or (why they cannot be read, None)."""
        try:
            return None, self.manager.restore(step, args=self.ocp.args.Composite(**items))
        except Exception as e:  # a missing or damaged part: Orbax raises many types
            lines = str(e).strip().splitlines()
            return (lines[0][:120] if lines else type(e).__name__), None

    def _discard(self, skipped: list[tuple[int, str]], then: str) -> None:
        """Warn of the damaged steps skipped, and remove them (real folders inside this one, never
        links), so that training can write those epochs again."""
        if not skipped:
            return
        shown = "; ".join(f"`{self.folder / str(step)}`: {problem}" for step, problem in skipped)
        warnings.warn(CheckpointWarning(f"skipped {len(skipped)} damaged checkpoint"
                                        f"{'s' * (len(skipped) > 1)} ({shown}); {then}"), stacklevel=3)
        with self._writing(None):
            for step, _ in skipped:
                shutil.rmtree(self.folder / str(step))
            self.manager.reload()

    def close(self) -> None:
        """Waits for the last save; after a failure already reported, reports nothing more."""
        reported = self.failed
        try:
            with self._writing(self.writing):
                self.manager.wait_until_finished()
        except StorageError:
            if not reported:
                raise
        finally:
            with contextlib.suppress(Exception):
                self.manager.close()
