"""The `dlc run` progress display: a Keras-like epoch bar with the latest loss and metrics on a
terminal, one line per epoch elsewhere (logs, CI)."""

from __future__ import annotations

import sys
from typing import TextIO


def _format(logs: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "epoch_time"))


class EpochProgress:
    def __init__(self, epochs: int, title: str, stream: TextIO | None = None, quiet: bool = False,
                 bar: bool = True):
        """`bar=False` prints a line per epoch even on a terminal."""
        self.epochs, self.title, self.quiet = epochs, title, quiet
        self.stream = stream or sys.stderr
        self.bar = None
        if bar and not quiet and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[logs]}"),
                                console=Console(file=self.stream), transient=False)
            self.task = self.bar.add_task(f"{title} epoch", total=epochs, logs="compiling…")
            self.bar.start()

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, logs=_format(logs))
        else:
            width = len(str(self.epochs))
            print(f"epoch {epoch:>{width}}/{self.epochs}  {_format(logs)}  ({logs['epoch_time'] * 1000:.1f} ms)",
                  file=self.stream, flush=True)

    def compiled(self, seconds: float, from_cache: bool) -> None:
        """Say whether the epoch program was compiled or loaded from the persistent cache."""
        if self.quiet:
            return
        text = (f"epoch program loaded from the compilation cache ({seconds:.2f} s)" if from_cache
                else f"epoch program compiled in {seconds:.2f} s (cached for the next run)")
        if self.bar is not None:
            self.bar.update(self.task, logs=text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
