"""The `fit` loop: epochs of a compiled `Trainer` on the device, with one host sync each for
progress, history, early stopping, the divergence guard and the checkpoint decision."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from dlc.compiler import registry as reg
from dlc.runtime import measures
from dlc.runtime import train as programs
from dlc.runtime.devices import _cache_entries
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import EarlyStopping, Interrupted, Plateau, Progress, divergence
from dlc.runtime.train import Trainer, TrainState, _streamed_epoch


@dataclass
class FitResult:
    state: TrainState
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    wall_time: float
    timings: dict[str, float] = field(default_factory=dict)  # start-up, seconds: trace, compile, ...


class Checkpointer(Protocol):
    def save(self, state: TrainState, best: Any, progress: Progress, force: bool = False) -> None: ...


def fit(trainer: Trainer, state: TrainState, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None, options: FitOptions, *,
        checkpointer: Checkpointer | None = None, resume: tuple[Progress, Any] | None = None) -> FitResult:
    """Train for the epochs of the trainer's program, with its seed (`Session.prepare` applied the
    options' overrides), and early stopping when the program asks for it.

    `resume` = (progress, best arrays) continues a checkpointed run; the keys of epoch e are
    derived from (seed, e), so a resumed run draws exactly what the uninterrupted one would.
    `options.should_stop` is polled before the first epoch and after every one (safe points): when
    it says so, the state is checkpointed and Interrupted raised. A non-finite loss raises Diverged
    before anything of that epoch is kept. Training data larger than `options.data_budget` bytes
    stays on the host and is streamed through the device in chunks of whole batches.
    """
    epochs, seed, data_budget = trainer.program.epochs, trainer.program.seed, options.data_budget
    should_stop = options.should_stop or (lambda: False)
    start = time.perf_counter()
    stream = data_budget is not None and train[0].nbytes + train[1].nbytes > data_budget
    if stream:
        row_bytes = max(1, (train[0].nbytes + train[1].nbytes) // max(len(train[0]), 1))
        chunk_rows = max(trainer.batch, data_budget // row_bytes // trainer.batch * trainer.batch)
    else:
        x, y = trainer.place(train[0]), trainer.place(train[1])
    val_set = trainer.eval_set(*val, on_device=not stream) if val is not None else None
    state = trainer.place(state)
    copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
    rule = trainer.program.early_stop
    keep_best = rule is not None and rule.restore_best
    progress, best = resume if resume is not None else (Progress(), None)
    stopper = EarlyStopping(rule, progress)
    schedule = trainer.program.schedule
    plateau = Plateau(schedule.args, rule, progress.plateau) if reg.lookup("schedule", schedule.name).on_plateau \
        else None
    first = progress.epoch + 1  # the first epoch this fit trains
    factors = trainer.schedule_factors(range(first, epochs + 1))
    base_key = jax.random.fold_in(jax.random.key(seed), 1)
    stopped = False
    finished = stopper.finished  # a resumed run that had stopped early
    # The loss before this fit's first update, on one evaluation chunk of the training data (the
    # evaluation program is compiled for validation and final metrics anyway).
    head = trainer.eval_set(train[0][:programs.EVAL_CHUNK], train[1][:programs.EVAL_CHUNK], on_device=not stream)
    train_epoch = trainer.epoch_program
    if not stream and not trainer.per_step and not finished and progress.epoch < epochs:
        timings = _prepare(trainer, (state, x, y, base_key, progress.epoch + 1), options)
    else:
        timings = {"trace": 0.0, "compile": 0.0}
    _add(timings, trainer.eval_program.prepare(state.params, state.batch_stats, *head.chunks[0]))
    start_loss = trainer.evaluate(state.params, state.batch_stats, head)["loss"]
    penalty = trainer.penalty(state.params, state.batch_stats)
    if penalty is not None:  # the training loss the divergence guard watches holds it: so does its baseline
        start_loss += float(penalty)
    if should_stop():  # asked during loading or compiling: nothing new to save
        raise Interrupted(progress.epoch, progress.history)
    for epoch in range(progress.epoch + 1, epochs + 1 if not finished else 0):
        t0 = time.perf_counter()
        if stream:
            key = jax.random.fold_in(base_key, epoch)
            state, train_metrics = _streamed_epoch(trainer, state, train, key, seed, epoch, chunk_rows)
        elif trainer.per_step:
            state, train_metrics = trainer.epoch_by_steps(state, x, y, base_key, epoch)
        else:
            state, train_metrics = train_epoch(state, x, y, base_key, epoch)
        val_sums = trainer.evaluation_sums(state.params, state.batch_stats, val_set) if val_set else {}
        # The one host sync of the epoch: its sums, and the learning rate it trained with.
        fetched = jax.device_get((train_metrics, val_sums, measures.rate(state.opt_state)))
        logs = {"epoch": epoch, **logs_of(trainer, fetched[0], fetched[1], val_set)}
        logs["lr"] = measures.epoch_rate(fetched[2], factors[epoch - first])
        logs["epoch_time"] = time.perf_counter() - t0
        if (diverged := divergence(epoch, logs, start_loss, progress.history)) is not None:
            raise diverged
        progress.history.append(logs)
        # The first epoch with all of fit's work before it that is not tracing or compiling (data
        # placed on the device, the loss before training): the parts of the profile add up.
        timings.setdefault("first_epoch", time.perf_counter() - start - timings["trace"] - timings["compile"])
        is_best, stop = stopper.update(epoch, logs)
        if plateau is not None and plateau.update(logs):
            reduced = np.float32(fetched[2]) * np.float32(schedule.args["factor"])
            state = TrainState(state.params, state.batch_stats,
                               measures.with_rate(state.opt_state, trainer.place(reduced)))
        if is_best and keep_best:
            best = copy({"params": state.params, "batch_stats": state.batch_stats})
        progress.epoch = epoch
        interrupted = should_stop()
        if checkpointer is not None:
            checkpointer.save(state, best, progress, force=interrupted or stop or epoch == epochs)
        if options.on_epoch:
            options.on_epoch(epoch, logs)
        if interrupted:
            raise Interrupted(epoch, progress.history)
        if stop:
            stopped = True
            break
    if best is not None and keep_best:
        state = TrainState(best["params"], best["batch_stats"], state.opt_state)
    best_epoch = stopper.best_epoch if rule else len(progress.history)
    stopped = stopped or stopper.finished
    return FitResult(state, progress.history, best_epoch, stopped, time.perf_counter() - start, timings)


def logs_of(trainer: Trainer, train: dict, val: dict, val_set: programs.EvalSet | None) -> dict[str, float]:
    """An epoch's training loss and metrics (means the program took) and validation ones (sums)."""
    logs = measures.logs(trainer.program, train, None)
    return logs | (measures.logs(trainer.program, val, val_set.n, "val_") if val_set is not None else {})


def _prepare(trainer: Trainer, args: tuple, options: FitOptions) -> dict[str, float]:
    """Trace (or read from the trace cache) and compile the epoch program ahead of the first
    epoch, to time each and to say whether XLA's persistent cache had the compiled program."""
    cached_before = _cache_entries()
    timings = dict(trainer.epoch_program.prepare(*args))
    timings["compile_cached"] = float(_cache_entries() == cached_before and cached_before > 0)
    if options.on_compiled:
        options.on_compiled(timings["compile"], bool(timings["compile_cached"]))
    return timings


def _add(timings: dict[str, float], more: dict[str, float]) -> None:
    for part in ("trace", "compile"):
        timings[part] += more.get(part, 0.0)
