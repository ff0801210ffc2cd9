"""The `dlc run` progress display: a Keras-like epoch bar with the latest loss and metrics on a
terminal, one line per epoch elsewhere (logs, CI); for a sweep, a bar over the epochs of the
group training now, with how many of its members still train and the best member so far."""

from __future__ import annotations

import sys
from typing import TextIO


def _bar(stream: TextIO, description: str, total: int):
    """A rich progress bar on the terminal `stream`, started, its one task `description` out of
    `total` with a `logs` field after it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[logs]}"), console=Console(file=stream), transient=False)
    bar.add_task(description, total=total, logs="compiling…")
    bar.start()
    return bar


def _compiled(seconds: float, from_cache: bool) -> str:
    return (f"epoch program loaded from the compilation cache ({seconds:.2f} s)" if from_cache
            else f"epoch program compiled in {seconds:.2f} s (cached for the next run)")


def _format(logs: dict[str, float]) -> str:
    # A learning rate below 5e-5 would read 0.0000 with four decimals.
    return "  ".join(f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}" for k, v in logs.items()
                     if k not in ("epoch", "epoch_time"))


class EpochProgress:
    def __init__(self, epochs: int, title: str, stream: TextIO | None = None, quiet: bool = False,
                 bar: bool = True):
        """`bar=False` prints a line per epoch even on a terminal."""
        self.epochs, self.title, self.quiet = epochs, title, quiet
        self.stream = stream or sys.stderr
        self.bar = _bar(self.stream, f"{title} epoch", epochs) if bar and not quiet and self.stream.isatty() else None

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], completed=epoch, logs=_format(logs))
        else:
            width = len(str(self.epochs))
            print(f"epoch {epoch:>{width}}/{self.epochs}  {_format(logs)}  ({logs['epoch_time'] * 1000:.1f} ms)",
                  file=self.stream, flush=True)

    def compiled(self, seconds: float, from_cache: bool) -> None:
        """Say whether the epoch program was compiled or loaded from the persistent cache."""
        if self.quiet:
            return
        text = _compiled(seconds, from_cache)
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], logs=text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class SweepProgress:
    """A sweep's progress on a terminal: a bar over the epochs of the group training now (a group
    after the first, or a member trained alone, starts it again), how many of its members trained
    the latest epoch, and the best value of the monitor so far with its member's label. Quiet
    elsewhere: a log gets the ranked table at the end, not a line per member and epoch."""

    def __init__(self, epochs: int, title: str, labels: list[str], monitor: str | None, mode: str = "min",
                 stream: TextIO | None = None, quiet: bool = False):
        """`monitor`: the early-stopping monitor, else None (`val_loss` when there is one, else `loss`)."""
        self.epochs, self.title, self.labels, self.monitor, self.sign = epochs, title, labels, monitor, \
            -1 if mode == "max" else 1
        stream = stream or sys.stderr
        self.bar = _bar(stream, f"{title} sweep, epoch", epochs) if not quiet and stream.isatty() else None
        self.epoch, self.running, self.group = 0, 0, 1
        self.best: tuple[float, str, str] | None = None  # (value, monitor, member label)

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        if self.bar is None:
            return
        if epoch < self.epoch:
            self.group += 1
        if epoch != self.epoch:
            self.epoch, self.running = epoch, 0
        self.running += 1
        monitor = self.monitor or ("val_loss" if "val_loss" in logs else "loss")
        value = logs.get(monitor)
        if value is not None and (self.best is None or self.sign * value < self.sign * self.best[0]):
            self.best = (value, monitor, self.labels[logs["member"]])
        group = f"group {self.group}: " if self.group > 1 else ""
        best = f" · best {self.best[1]} {self.best[0]:.4f} ({self.best[2]})" if self.best else ""
        self.bar.update(self.bar.task_ids[0], completed=epoch,
                        logs=f"{group}{self.running} member{'s' * (self.running != 1)} training{best}")

    def compiled(self, seconds: float, from_cache: bool) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], logs=_compiled(seconds, from_cache))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
