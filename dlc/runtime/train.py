"""Training: one jitted program per epoch that scans over the mini-batches of a permutation
drawn on the device, another for evaluation, one host sync per epoch.

The epoch program is one pure function of (state, data, key): no Python per step, so a small
model trains at the speed of hand-written JAX, and `vmap` over seeds or learning rates, or
sharding over devices, take it as it is.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlc.compiler import ir
from dlc.compiler.lower import Lowered, lower, optimizer

# Evaluation and prediction run in chunks of this many rows, padded: one compiled program serves
# every split of every size.
EVAL_CHUNK = 1024


@dataclass
class TrainState:
    """Everything that changes while training; a pytree, so whole epochs can be jitted."""

    params: Any
    batch_stats: Any
    opt_state: Any


jax.tree_util.register_dataclass(TrainState, data_fields=["params", "batch_stats", "opt_state"], meta_fields=[])


def _batches(n: int, batch: int) -> tuple[int, int]:
    steps = max(1, math.ceil(n / batch))
    return steps, steps * batch - n


def _padded_index(order: jax.Array, n: int, batch: int) -> tuple[jax.Array, jax.Array]:
    """Batch indices (steps, batch) and a mask that is 0 for the padding of the last batch, so that
    every epoch has one static shape and compiles once."""
    steps, pad = _batches(n, batch)
    index = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(steps, batch)
    mask = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((pad,), jnp.float32)]).reshape(steps, batch)
    return index, mask


@dataclass
class Trainer:
    """Compiled train and eval programs for one program and batch size."""

    program: ir.Program
    lowered: Lowered
    tx: optax.GradientTransformation
    batch: int
    shuffle: bool
    _train_epoch: Callable = field(init=False, repr=False)
    _eval_jit: Callable = field(init=False, repr=False)
    _predict_jit: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._train_epoch = jax.jit(self.train_epoch, donate_argnums=(0,))
        self._eval_jit = jax.jit(self._eval_chunk)
        self._predict_jit = jax.jit(lambda variables, x: self.lowered.module.apply(variables, x, train=False))

    # --- pure functions ------------------------------------------------------------------

    def forward(self, params, batch_stats, x, train: bool, rng=None):
        """Training outputs (logits for a fused loss) and the updated batch statistics."""
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        if train and batch_stats:
            out, updates = self.lowered.module.apply(variables, x, train=True, logits=True,
                                                     rngs={"dropout": rng}, mutable=["batch_stats"])
            return out, updates["batch_stats"]
        out = self.lowered.module.apply(variables, x, train=train, logits=True, rngs={"dropout": rng} if train else None)
        return out, batch_stats

    def _sums(self, out, y, mask, per_example_loss):
        """Masked sums of the loss and every metric over a batch."""
        sums = {"loss": jnp.sum(per_example_loss * mask)}
        if self.lowered.metrics:
            pred = self.lowered.predictions(out)
            for name, fn in self.lowered.metrics.items():
                sums[name] = jnp.sum(fn(pred, y) * mask)
        return sums

    def train_epoch(self, state: TrainState, x, y, key):
        """One epoch: shuffle on the device, scan over mini-batches. Returns the new state and the
        mean training loss and metrics (in training mode, as Keras reports them)."""
        n = x.shape[0]
        shuffle_key, dropout_key = jax.random.split(key)
        order = jax.random.permutation(shuffle_key, n) if self.shuffle else jnp.arange(n)
        index, mask = _padded_index(order, n, self.batch)

        def step(carry, inputs):
            state, totals = carry
            i, idx, m = inputs
            xb, yb = x[idx], y[idx]
            count = jnp.maximum(jnp.sum(m), 1.0)

            def objective(params):
                out, stats = self.forward(params, state.batch_stats, xb, True, jax.random.fold_in(dropout_key, i))
                per_example = self.lowered.loss(out, yb)
                return jnp.sum(per_example * m) / count, (out, stats, per_example)

            (_, (out, stats, per_example)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
            updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            sums = self._sums(jax.lax.stop_gradient(out), yb, m, per_example)
            totals = jax.tree.map(jnp.add, totals, sums)
            return (TrainState(params, stats, opt_state), totals), None

        zeros = {name: jnp.zeros((), jnp.float32) for name in ("loss", *self.lowered.metrics)}
        steps = index.shape[0]
        (state, totals), _ = jax.lax.scan(step, (state, zeros), (jnp.arange(steps), index, mask))
        return state, jax.tree.map(lambda t: t / n, totals)

    def _eval_chunk(self, params, batch_stats, x, y, mask):
        """Masked sums of loss and metrics over one fixed-size chunk, in evaluation mode."""
        out, _ = self.forward(params, batch_stats, x, False)
        return self._sums(out, y, mask, self.lowered.loss(out, y))

    def eval_set(self, x: np.ndarray, y: np.ndarray) -> EvalSet:
        """A split cut into chunks of EVAL_CHUNK rows (the last padded and masked), on the device:
        every split of every size shares one compiled evaluation program."""
        n = len(x)
        chunks = []
        for start in range(0, max(n, 1), EVAL_CHUNK):
            xb, yb = x[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
            pad = EVAL_CHUNK - len(xb)
            mask = np.concatenate([np.ones(len(xb), np.float32), np.zeros(pad, np.float32)])
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, *yb.shape[1:]), yb.dtype)])
            chunks.append(jax.device_put((xb, yb, mask)))
        return EvalSet(n, chunks)

    def evaluate(self, params, batch_stats, data: EvalSet) -> dict:
        """Mean loss and metrics over a split, left on the device (the caller decides when to sync)."""
        totals = None
        for xb, yb, mask in data.chunks:
            sums = self._eval_jit(params, batch_stats, xb, yb, mask)
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        return jax.tree.map(lambda t: t / max(data.n, 1), totals)

    def predict(self, params, batch_stats, x: np.ndarray) -> np.ndarray:
        """The spec's outputs (its softmax/sigmoid applied), in fixed-size chunks: one compile."""
        variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
        outs = []
        for start in range(0, len(x), EVAL_CHUNK):
            xb = x[start:start + EVAL_CHUNK]
            padded = np.concatenate([xb, np.zeros((EVAL_CHUNK - len(xb), *xb.shape[1:]), np.float32)])
            outs.append(np.asarray(self._predict_jit(variables, padded))[:len(xb)])
        return np.concatenate(outs) if outs else np.zeros((0, *(self.program.output_shape or ())), np.float32)


@dataclass(frozen=True)
class EvalSet:
    n: int
    chunks: list


def use_compilation_cache() -> str:
    """Keep compiled XLA programs on disk, so a second run of an unchanged spec skips compiling.
    The folder is `$DLC_CACHE_DIR`, else `$XDG_CACHE_HOME/dlc/xla` (`~/.cache/dlc/xla`)."""
    folder = os.environ.get("DLC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dlc", "xla")
    if jax.config.jax_compilation_cache_dir != folder:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def make_trainer(program: ir.Program, n_train: int, epochs: int) -> Trainer:
    use_compilation_cache()
    steps, _ = _batches(n_train, program.batch)
    tx = optimizer(program, steps, steps * epochs)
    shuffle = program.data.shuffle if program.data else True
    return Trainer(program, lower(program), tx, program.batch, shuffle)


def init_state(trainer: Trainer, input_shape: tuple[int, ...], seed: int) -> TrainState:
    """Initial parameters, batch statistics and optimizer state: one compiled program."""

    def init(key):
        variables = trainer.lowered.module.init({"params": key, "dropout": key},
                                                jnp.zeros((1, *input_shape), jnp.float32), train=False)
        params = variables.get("params", {})  # a model of parameter-free layers has none
        return TrainState(params, variables.get("batch_stats", {}), trainer.tx.init(params))

    return jax.jit(init)(jax.random.fold_in(jax.random.key(seed), 0))


@dataclass
class EarlyStopping:
    """Host-side bookkeeping on the per-epoch scalars: is this epoch the best, and should we stop."""

    rule: ir.EarlyStop | None
    best: float = math.nan
    best_epoch: int = 0
    waited: int = 0

    def improved(self, value: float) -> bool:
        if math.isnan(self.best):
            return True
        delta = self.rule.min_delta if self.rule else 0.0
        if self.rule and self.rule.mode == "max":
            return value > self.best + delta
        return value < self.best - delta

    def update(self, epoch: int, logs: dict[str, float]) -> tuple[bool, bool]:
        """(this epoch is the best so far, training should stop now)."""
        monitor = self.rule.monitor if self.rule else ("val_loss" if "val_loss" in logs else "loss")
        value = logs[monitor]
        if self.improved(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            return True, False
        self.waited += 1
        return False, bool(self.rule and self.waited >= self.rule.patience)


@dataclass
class FitResult:
    state: TrainState
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    wall_time: float


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
        return {"epoch": self.epoch, "history": self.history, "best": None if math.isnan(self.best) else self.best,
                "best_epoch": self.best_epoch, "waited": self.waited}

    @classmethod
    def from_json(cls, meta: dict) -> Progress:
        best = meta.get("best")
        return cls(int(meta["epoch"]), list(meta["history"]), math.nan if best is None else float(best),
                   int(meta["best_epoch"]), int(meta["waited"]))


class Interrupted(Exception):
    """Training stopped at a safe point on request (Ctrl-C); the state is checkpointed."""

    def __init__(self, epoch: int, history: list[dict[str, float]]):
        super().__init__(f"interrupted after epoch {epoch}")
        self.epoch, self.history = epoch, history


class Diverged(Exception):
    """A loss stopped being finite. The parameters of that epoch are not kept."""

    def __init__(self, epoch: int, quantity: str, value: float, history: list[dict[str, float]]):
        super().__init__(f"training diverged at epoch {epoch}: `{quantity}` is {value}")
        self.epoch, self.quantity, self.value, self.history = epoch, quantity, value, history


class Checkpointer(Protocol):
    def save(self, state: TrainState, best: Any, progress: Progress, force: bool = False) -> None: ...


def fit(trainer: Trainer, state: TrainState, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None, epochs: int, seed: int,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None, *,
        checkpointer: Checkpointer | None = None, resume: tuple[Progress, Any] | None = None,
        should_stop: Callable[[], bool] | None = None) -> FitResult:
    """Train for up to `epochs`, with early stopping when the program asks for it.

    `resume` = (progress, best arrays) continues a checkpointed run; the keys of epoch e are
    derived from (seed, e), so a resumed run draws exactly what the uninterrupted one would.
    `should_stop` is polled after every epoch (a safe point): when it says so, the state is
    checkpointed and Interrupted raised. A non-finite loss raises Diverged before anything of
    that epoch is kept.
    """
    start = time.perf_counter()
    x, y = jax.device_put(train[0]), jax.device_put(train[1])
    val_set = trainer.eval_set(*val) if val is not None else None
    copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
    rule = trainer.program.early_stop
    keep_best = rule is not None and rule.restore_best
    progress, best = resume if resume is not None else (Progress(), None)
    stopper = EarlyStopping(rule, progress.best, progress.best_epoch, progress.waited)
    base_key = jax.random.fold_in(jax.random.key(seed), 1)
    stopped = False
    finished = rule is not None and progress.waited >= rule.patience  # a resumed run that had stopped early
    for epoch in range(progress.epoch + 1, epochs + 1 if not finished else 0):
        t0 = time.perf_counter()
        state, train_metrics = trainer._train_epoch(state, x, y, jax.random.fold_in(base_key, epoch))
        val_metrics = trainer.evaluate(state.params, state.batch_stats, val_set) if val_set else {}
        fetched = jax.device_get((train_metrics, val_metrics))  # the one host sync of the epoch
        logs = {"epoch": epoch, **{k: float(v) for k, v in fetched[0].items()},
                **{f"val_{k}": float(v) for k, v in fetched[1].items()}}
        logs["epoch_time"] = time.perf_counter() - t0
        for quantity in ("loss", "val_loss"):
            if quantity in logs and not math.isfinite(logs[quantity]):
                raise Diverged(epoch, quantity, logs[quantity], progress.history + [logs])
        progress.history.append(logs)
        is_best, stop = stopper.update(epoch, logs)
        if is_best and keep_best:
            best = copy({"params": state.params, "batch_stats": state.batch_stats})
        progress.epoch, progress.best, progress.best_epoch, progress.waited = \
            epoch, stopper.best, stopper.best_epoch, stopper.waited
        interrupted = should_stop is not None and should_stop()
        if checkpointer is not None:
            checkpointer.save(state, best, progress, force=interrupted or stop or epoch == epochs)
        if on_epoch:
            on_epoch(epoch, logs)
        if interrupted:
            raise Interrupted(epoch, progress.history)
        if stop:
            stopped = True
            break
    if best is not None and keep_best:
        state = TrainState(best["params"], best["batch_stats"], state.opt_state)
    best_epoch = stopper.best_epoch if rule else len(progress.history)
    stopped = stopped or bool(rule and stopper.waited >= rule.patience)
    return FitResult(state, progress.history, best_epoch, stopped, time.perf_counter() - start)
