"""`dlc run --tensorboard`: every epoch's scalars as TensorBoard event files, written as the run
goes, so `tensorboard --logdir RUN/tensorboard` shows it live.

Laid out as Keras's TensorBoard callback lays it out: the training numbers under `train/`, the
validation ones (history's `val_` columns, without the prefix) under `validation/`, so a dashboard
draws `loss` of both in one chart; the step is the epoch. Everything else in an epoch's history
row (the metrics, `epoch_time`, the learning rate where history has it) goes under `train/` by
its column name. TensorBoard keeps a scalar as a 32-bit float.

Written through tensorboardX, which needs no TensorFlow; imported only when `--tensorboard` is
given. An event file is appended as epochs finish (a reader skips a half-written last record),
so unlike the other parts of a run folder it is not written whole and renamed; a resumed run
adds a new file beside the old ones, and TensorBoard reads them as one run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tensorboardX import SummaryWriter

from dlc.runtime.storage import refuse_link, storage_faults

# Seconds between flushes of an event file to disk while training: how far behind a live
# dashboard may be; closing the writer at the end of the run flushes the rest.
FLUSH_SECONDS = 5
RUNS = {"train": "", "validation": "val_"}  # TensorBoard's run (a subfolder) -> the history columns' prefix


class TensorBoardEpochs:
    """The `on_epoch` callback that writes an epoch's history row as TensorBoard scalars. The
    training run's file is opened at once, so a folder that cannot be written stops the run
    before it trains; the validation run's once there is a validation number to write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for path in (folder, *(folder / run for run in RUNS)):
            refuse_link(path, "; dlc never writes TensorBoard events through one")
        self.writers: dict[str, SummaryWriter] = {}
        self._writer("train", kept="nothing was trained")

    def _writer(self, run: str, kept: str = "") -> SummaryWriter:
        if run not in self.writers:
            with self._faults(kept):
                # An absolute path: tensorboardX reads a `gs:` or `s3:` prefix as a remote store.
                self.writers[run] = SummaryWriter(str((self.folder / run).absolute()), flush_secs=FLUSH_SECONDS)
        return self.writers[run]

    def _faults(self, kept: str = "") -> contextlib.AbstractContextManager:
        return storage_faults(self.folder, kept or "training stopped; `--resume` continues it from its last "
                              "checkpoint", what="TensorBoard events")

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            if name == "epoch":
                continue
            run = "validation" if name.startswith(RUNS["validation"]) else "train"
            self._writer(run).add_scalar(name.removeprefix(RUNS[run]), value, epoch)

    def close(self) -> None:
        with self._faults():
            for writer in self.writers.values():
                writer.close()


@contextlib.contextmanager
def tensorboard_epochs(folder: Path, shown: Callable[[int, dict[str, float]], None], members: list[str] | None = None
                       ) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """An `on_epoch` that writes each epoch to TensorBoard event files under `folder`, then calls
    `shown` (the progress display); the files are closed, and flushed, however training ends.
    For a sweep, `members` are its labels: member i's epochs (their `member` entry is i) go under
    `folder/LABEL`, so a dashboard of `folder` draws every member's curves side by side."""
    if members is None:
        events = {None: TensorBoardEpochs(folder)}
    else:
        refuse_link(folder, "; dlc never writes TensorBoard events through one")
        events = {}

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        member = None if members is None else int(logs["member"])
        if member not in events:
            events[member] = TensorBoardEpochs(folder / members[member])
        events[member](epoch, {k: v for k, v in logs.items() if k != "member"})
        shown(epoch, logs)

    try:
        yield on_epoch
    finally:
        for written in events.values():
            written.close()
