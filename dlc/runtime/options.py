"""How to train: the options of `Program.fit` as one object, validated once by the API and passed
down unchanged through `Session.fit` to the epoch loop, so a new option is a field here, a keyword
of `fit`, and the line that reads it (standard library only: the CLI builds one before JAX starts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FitOptions:
    epochs: int | None = None  # None: the spec's
    seed: int | None = None  # None: the spec's
    batch: int | None = None  # None: the spec's
    validation_split: float | None = None  # None: the spec's `val=`
    on_epoch: Callable[[int, dict[str, float]], None] | None = None
    checkpoint_dir: Path | None = None  # None: no checkpoints
    resume: bool = False  # continue the run checkpointed in checkpoint_dir
    checkpoint_interval: float = 2.0  # seconds, at least, between checkpoints
    should_stop: Callable[[], bool] | None = None  # asked at every safe point
    devices: int | str | None = None  # shard each batch over this many devices, or "all"
    data_budget: int | None = None  # bytes of training data kept on the device; more is streamed
    on_compiled: Callable[[float, bool], None] | None = None  # (seconds, from the cache)
