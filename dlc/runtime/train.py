"""Training programs: one jitted program per epoch that scans over the mini-batches of a permutation
drawn on the device, another for evaluation, one host sync per epoch.

The epoch program is one pure function of (state, data, key): no Python per step, so a small
model trains at the speed of hand-written JAX, and `vmap` over seeds or learning rates, or
sharding over devices, take it as it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlc.compiler import ir, trainingfacts
from dlc.compiler import registry as reg
from dlc.compiler.lower import Lowered, lower, optimizer, unit_schedule
from dlc.runtime import measures
from dlc.runtime.devices import available_devices, device_mesh, place, traced_programs_folder
from dlc.runtime.tracecache import ProgramCache, program_identity

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
    mesh: Any = None  # a jax.sharding.Mesh over several devices, or None for one
    per_step: bool = False  # one compiled program per mini-batch instead of a scan (see epoch_by_steps)
    programs: ProgramCache = field(default_factory=lambda: ProgramCache(None, ""))  # traced programs on disk
    schedule: Any = None  # the schedule of rate 1 (the learning rate's factor at each update count)
    steps_per_epoch: int = 1
    _train_epoch: Callable = field(init=False, repr=False)
    _train_chunk: Callable = field(init=False, repr=False)
    _eval_jit: Callable = field(init=False, repr=False)
    _predict_jit: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # What the training loss adds to the mean loss: class weights and kernel penalties (a
        # sweep's group trainer reads each member's penalties from its state instead).
        weights = self.program.class_weights or measures.unknown_class_weights(self.program)
        self.class_weights = None if weights is None else np.asarray(weights, np.float32)
        self.coefficients = trainingfacts.penalty_coefficients(self.program)
        self.confusion = trainingfacts.confusion_shape(self.program) \
            if trainingfacts.counts_confusion(self.program) else None
        self.gathers = trainingfacts.gathers_rows(self.program)
        # `schedule plateau`: the loop lowers the rate between epochs, from the monitored quantity.
        self.on_plateau = reg.lookup("schedule", self.program.schedule.name).on_plateau
        # What training runs goes through the trace cache; `_train_epoch` and `_predict_jit` stay
        # plain jits for `export.py`, which lowers them to StableHLO text.
        self._train_epoch = jax.jit(self.train_epoch, donate_argnums=(0,))
        self.epoch_program = self.programs.program("epoch", self.train_epoch, donate_argnums=(0,))
        self._train_chunk = jax.jit(self.train_chunk, donate_argnums=(0,))
        self.step_program = self.programs.program("step", self.train_step, donate_argnums=(0, 1))
        self._plans: dict[int, Callable] = {}
        self.zeros_program = self.programs.program("zeros", self._zeros)
        self.mean_program = self.programs.program("mean", measures.means)
        self.eval_program = self.programs.program("eval", self._eval_chunk)
        self._predict_jit = jax.jit(lambda variables, x: self.lowered.module.apply(variables, x, train=False))

    # --- pure functions ------------------------------------------------------------------

    def forward(self, params, batch_stats, x, train: bool, rng=None, rows=None):
        """Training outputs (logits for a fused loss) and the updated batch statistics."""
        variables = {"params": params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        if train and batch_stats:
            out, updates = self.lowered.module.apply(variables, x, train=True, logits=True, rows=rows,
                                                     rngs=_streams(rng), mutable=["batch_stats"])
            return out, updates["batch_stats"]
        out = self.lowered.module.apply(variables, x, train=train, logits=True, rngs=_streams(rng) if train else None)
        return out, batch_stats

    def _sums(self, out, y, mask, per_example_loss):
        """Masked sums of the loss and every per-example metric over a batch, and its confusion
        counts where a metric reads them."""
        sums = {"loss": jnp.sum(per_example_loss * mask)}
        if self.lowered.metrics or self.confusion:
            pred = self.lowered.predictions(out)
            for name, fn in self.lowered.metrics.items():
                sums[name] = jnp.sum(fn(pred, y) * mask)
            if self.confusion:
                sums[measures.CONFUSION] = measures.confusion(pred, y, mask, self.lowered.task, self.confusion)
        return sums

    def _rows(self, out, y, mask) -> dict:
        """What a batch adds to the split's gathered rows (for `auc`), or nothing."""
        return measures.batch_rows(self.lowered.predictions(out), y, mask) if self.gathers else {}

    def weighting(self, held):
        """The class weights of the training loss (None without `class_weight=`); `held` is the
        state's `batch_stats` slot, where a sweep's members keep their own."""
        return self.class_weights

    def penalty(self, params, held):
        """The kernel penalties of the parameters (None without any); `held` is the state's
        `batch_stats` slot, where a sweep's members keep their own coefficients."""
        return measures.penalty(params, self.coefficients)

    def _shard_batch(self, array):
        """With several devices, split a batch (or chunk) over the mesh's data axis; parameters stay
        replicated, and XLA's SPMD partitioner inserts the gradient all-reduce."""
        if self.mesh is None:
            return array
        from jax.sharding import NamedSharding, PartitionSpec

        spec = PartitionSpec("data", *([None] * (array.ndim - 1)))
        return jax.lax.with_sharding_constraint(array, NamedSharding(self.mesh, spec))

    def _step(self, state: TrainState, totals, x, y, idx, m, dropout_key, i):
        """One mini-batch `x[idx]` (`m` zeroes its padding rows): the update, and the running sums of
        the loss and metrics."""
        xb, yb, m = self._shard_batch(x[idx]), self._shard_batch(y[idx]), self._shard_batch(m)
        count = jnp.maximum(jnp.sum(m), 1.0)

        def objective(params):
            out, stats = self.forward(params, state.batch_stats, xb, True, jax.random.fold_in(dropout_key, i), m)
            per_example = self.lowered.loss(out, yb)
            weights = self.weighting(state.batch_stats)
            if weights is not None:  # weighted in training only: evaluation reports the plain loss
                per_example = per_example * measures.example_weights(weights, yb, self.lowered.task)
            loss, penalty = jnp.sum(per_example * m) / count, self.penalty(params, state.batch_stats)
            return (loss if penalty is None else loss + penalty), (out, stats, per_example, penalty)

        (_, (out, stats, per_example, penalty)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        out = jax.lax.stop_gradient(out)
        sums = self._sums(out, yb, m, per_example)
        if penalty is not None:  # the reported training loss is the one minimized, as Keras reports it
            sums["loss"] = sums["loss"] + jax.lax.stop_gradient(penalty) * jnp.sum(m)
        return (TrainState(params, stats, opt_state), jax.tree.map(jnp.add, totals, sums)), self._rows(out, yb, m)

    def _zeros(self) -> dict:
        zeros = {name: jnp.zeros((), jnp.float32) for name in ("loss", *self.lowered.metrics)}
        return zeros | ({measures.CONFUSION: jnp.zeros(self.confusion, jnp.int32)} if self.confusion else {})

    def _scan_batches(self, state: TrainState, x, y, index, mask, dropout_key, first_step):
        """Train on the batches `x[index[s]]`, s = 0, 1, ...; `mask` zeroes padding rows. Returns
        the new state, the sums of the loss and metrics, and the batches' rows (steps, batch)."""

        def step(carry, inputs):
            i, idx, m = inputs
            return self._step(*carry, x, y, idx, m, dropout_key, i)

        steps = jnp.arange(index.shape[0]) + first_step
        (state, totals), rows = jax.lax.scan(step, (state, self._zeros()), (steps, index, mask))
        return state, totals, rows

    def _epoch_plan(self, n: int, key, epoch):
        """The epoch's batches: indices (steps, batch) of a permutation drawn on the device, the
        padding mask, and the dropout key. The epoch is folded into the key here, inside the jitted
        program: an eager `fold_in` on the host costs ~0.6 ms per epoch on CPU."""
        shuffle_key, dropout_key = jax.random.split(jax.random.fold_in(key, epoch))
        order = jax.random.permutation(shuffle_key, n) if self.shuffle else jnp.arange(n)
        index, mask = _padded_index(order, n, self.batch)
        return index, mask, dropout_key

    def train_epoch(self, state: TrainState, x, y, key, epoch):
        """One epoch with the data on the device: shuffle there, scan over mini-batches. A pure
        function of (state with its hyperparameters, data, key, epoch). Returns the new state and the
        mean training loss and metrics (in training mode, as Keras reports them), with the confusion
        counts and the rows of the metrics computed over the whole split (`measures.logs`)."""
        n = x.shape[0]
        index, mask, dropout_key = self._epoch_plan(n, key, epoch)
        state, totals, rows = self._scan_batches(state, x, y, index, mask, dropout_key, 0)
        return state, self._epoch_totals(totals, [measures.flat_rows(rows)], n)

    def _epoch_totals(self, totals: dict, rows: list[dict], n: int) -> dict:
        """An epoch's means, counts and (joined) rows."""
        totals = measures.means(totals, n)
        if self.gathers:
            totals[measures.ROWS] = jax.tree.map(lambda *parts: jnp.concatenate(parts), *rows)
        return totals

    def train_step(self, state: TrainState, totals, x, y, index, mask, dropout_key, i):
        """Step `i` of an epoch planned by `_epoch_plan`, as its own program (see `per_step`)."""
        idx = jax.lax.dynamic_index_in_dim(index, i, keepdims=False)
        m = jax.lax.dynamic_index_in_dim(mask, i, keepdims=False)
        return self._step(state, totals, x, y, idx, m, dropout_key, i)

    def epoch_by_steps(self, state: TrainState, x, y, key, epoch):
        """The same epoch as `train_epoch`, one compiled step per mini-batch called from Python.
        XLA's CPU backend runs the backward pass of convolutions 10-20x slower inside a loop than
        as a program of its own (bench/README.md), so on a CPU, models with convolutions train
        about 4x faster this way; everywhere else the scan wins."""
        n = x.shape[0]
        index, mask, dropout_key = self.plan_program(n)(key, epoch)
        totals, rows = self.zeros_program(), []
        for i in range(index.shape[0]):
            (state, totals), batch_rows = self.step_program(state, totals, x, y, index, mask, dropout_key, i)
            rows.append(batch_rows)
        totals = self.mean_program(totals, n)
        return state, totals | ({measures.ROWS: jax.tree.map(lambda *parts: jnp.concatenate(parts), *rows)}
                                if self.gathers else {})

    def plan_program(self, n: int) -> Callable:
        """The program of `_epoch_plan` for `n` training rows (a static shape)."""
        if n not in self._plans:
            self._plans[n] = self.programs.program(f"plan-{n}", lambda key, epoch: self._epoch_plan(n, key, epoch))
        return self._plans[n]

    def train_chunk(self, state: TrainState, x, y, mask, key, first_step):
        """Part of a streamed epoch: `x`, `y` are whole batches already in epoch order (the last
        chunk padded, `mask` 0 there). The same step as `train_epoch`, for data that does not fit
        on the device. Returns the new state, the sums of loss and metrics, and the batches' rows."""
        steps = x.shape[0] // self.batch
        index = jnp.arange(steps * self.batch).reshape(steps, self.batch)
        _, dropout_key = jax.random.split(key)
        return self._scan_batches(state, x, y, index, mask.reshape(steps, self.batch), dropout_key, first_step)

    def _eval_chunk(self, params, batch_stats, x, y, mask):
        """Masked sums of loss and metrics over one fixed-size chunk, in evaluation mode."""
        if self.mesh is not None and EVAL_CHUNK % self.mesh.size == 0:
            x, y, mask = self._shard_batch(x), self._shard_batch(y), self._shard_batch(mask)
        out, _ = self.forward(params, batch_stats, x, False)
        sums = self._sums(out, y, mask, self.lowered.loss(out, y))
        return sums | ({measures.ROWS: self._rows(out, y, mask)} if self.gathers else {})

    def place(self, tree: Any) -> Any:
        """Put arrays on the device, or replicated on every device of the mesh."""
        if self.mesh is None:
            return jax.device_put(tree)
        from jax.sharding import NamedSharding, PartitionSpec

        return place(tree, NamedSharding(self.mesh, PartitionSpec()))

    def eval_set(self, x: np.ndarray, y: np.ndarray, on_device: bool = True) -> EvalSet:
        """A split cut into chunks of EVAL_CHUNK rows (the last padded and masked), on the device
        (or left on the host for data too large for it): every split of every size shares one
        compiled evaluation program."""
        n = len(x)
        chunks = []
        for start in range(0, max(n, 1), EVAL_CHUNK):
            xb, yb = x[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
            pad = EVAL_CHUNK - len(xb)
            mask = np.concatenate([np.ones(len(xb), np.float32), np.zeros(pad, np.float32)])
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros((pad, *yb.shape[1:]), yb.dtype)])
            chunks.append(self.place((xb, yb, mask)) if on_device else (xb, yb, mask))
        return EvalSet(n, chunks)

    def evaluation_sums(self, params, batch_stats, data: EvalSet) -> dict:
        """Sums of loss and metrics over a split, left on the device: the caller fetches them with
        everything else of the epoch and divides by `data.n` on the host (no eager device ops)."""
        totals = None
        for xb, yb, mask in data.chunks:
            totals = measures.combine(totals, self.eval_program(params, batch_stats, xb, yb, mask))
        return totals

    def evaluate(self, params, batch_stats, data: EvalSet) -> dict[str, float]:
        """Mean loss and metrics over a split (those of the whole split from its counts and rows)."""
        sums = jax.device_get(self.evaluation_sums(params, batch_stats, data))
        return measures.logs(self.program, sums, max(data.n, 1))

    def schedule_factors(self, epochs: range) -> np.ndarray:
        """The schedule's factor (float32) at the last update of each of these epochs (numbered from 1)."""
        counts = np.asarray(epochs, np.int32) * self.steps_per_epoch - 1
        return np.broadcast_to(np.asarray(self.schedule(counts), np.float32), counts.shape)

    def predict(self, params, batch_stats, x: np.ndarray) -> np.ndarray:
        """The spec's outputs (its softmax/sigmoid applied), in fixed-size chunks: one compile."""
        variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
        outs = []
        for start in range(0, len(x), EVAL_CHUNK):
            xb = x[start:start + EVAL_CHUNK]
            padded = np.concatenate([xb, np.zeros((EVAL_CHUNK - len(xb), *xb.shape[1:]), xb.dtype)])
            outs.append(np.asarray(self._predict_jit(variables, padded))[:len(xb)])
        return np.concatenate(outs) if outs else np.zeros((0, *(self.program.output_shape or ())), np.float32)


@dataclass(frozen=True)
class EvalSet:
    n: int
    chunks: list




def make_trainer(program: ir.Program, n_train: int, epochs: int, devices: int | str | None = None) -> Trainer:
    available_devices()  # a platform that cannot start says so here, before anything is traced
    # A batch larger than the data is the whole data, as in Keras: never pad up to the batch size.
    program = dataclasses.replace(program, batch=max(1, min(program.batch, n_train)))
    steps, _ = _batches(n_train, program.batch)
    tx = optimizer(program, steps, steps * epochs)
    shuffle = program.data.shuffle if program.data else True
    per_step = jax.default_backend() == "cpu" and _has_convolution(program.layers)
    mesh = device_mesh(devices, program.batch)
    settings = {"program": program.to_json(), "n_train": n_train, "epochs": epochs, "shuffle": shuffle,
                "per_step": per_step, "mesh": None if mesh is None else mesh.size}
    programs = ProgramCache(traced_programs_folder(), program_identity(settings))
    return Trainer(program, lower(program), tx, program.batch, shuffle, mesh, per_step, programs,
                   unit_schedule(program, steps, steps * epochs), steps)


def _has_convolution(layers: tuple[ir.Layer, ...]) -> bool:
    """Whether any layer, blocks included, is one that (like a convolution) trains faster one step
    per program on a CPU."""
    return any(reg.layer(layer.kind).per_step_on_cpu or _has_convolution(layer.body) for layer in layers)


def _streams(key: jax.Array) -> dict[str, jax.Array]:
    """The key of every random stream the layers draw from while training."""
    return {stream: key for stream in reg.RNG_STREAMS}


def input_dtype(program: ir.Program) -> np.dtype:
    """What the model's input is: int32 token ids into an `embedding`, else float32 numbers."""
    return np.dtype(np.int32 if program.token_vocab else np.float32)


def _initializer(trainer: Trainer, input_shape: tuple[int, ...]) -> Callable:
    def init(key):
        variables = trainer.lowered.module.init({"params": key, **_streams(key)},
                                                jnp.zeros((1, *input_shape), input_dtype(trainer.program)), train=False)
        params = variables.get("params", {})  # a model of parameter-free layers has none
        return TrainState(params, variables.get("batch_stats", {}), trainer.tx.init(params))

    return init


def init_state(trainer: Trainer, input_shape: tuple[int, ...], seed: int) -> TrainState:
    """Initial parameters, batch statistics and optimizer state: one compiled program (its trace
    kept in the trace cache as the training programs are)."""
    key = jax.random.fold_in(jax.random.key(seed), 0)
    # Runs once: XLA's backend optimisations cost more compile time than they save here.
    init = trainer.programs.program(f"init-{'x'.join(map(str, input_shape))}", _initializer(trainer, input_shape),
                                    compiler_options={"xla_backend_optimization_level": 0})
    return init(key)


def abstract_state(trainer: Trainer, input_shape: tuple[int, ...]) -> TrainState:
    """The shapes and dtypes of a train state, computing nothing: the target of a restore."""
    return jax.eval_shape(_initializer(trainer, input_shape), jax.random.key(0))


def _streamed_epoch(trainer: Trainer, state: TrainState, train: tuple[np.ndarray, np.ndarray], key, seed: int,
                   epoch: int, chunk_rows: int):
    """One epoch over data kept on the host: a permutation drawn from (seed, epoch), then chunks of
    whole batches moved to the device one at a time, through one compiled step (two shapes at most:
    full chunks and the last one). Sums stay on the device: still one host sync per epoch."""
    xs, ys = train
    n = len(xs)
    order = np.random.default_rng([seed, epoch]).permutation(n) if trainer.shuffle else np.arange(n)
    totals, rows_out, first_step = None, [], 0
    for start in range(0, n, chunk_rows):
        real = order[start:start + chunk_rows]
        rows = -(-len(real) // trainer.batch) * trainer.batch
        # Padding repeats example 0, as `_padded_index` does on the device: the same batches either way.
        index = np.concatenate([real, np.zeros(rows - len(real), real.dtype)])
        xb, yb = xs[index], ys[index]
        mask = np.concatenate([np.ones(len(real), np.float32), np.zeros(rows - len(real), np.float32)])
        state, sums, gathered = trainer._train_chunk(state, *trainer.place((xb, yb, mask)), key, first_step)
        first_step += rows // trainer.batch
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        rows_out.append(measures.flat_rows(gathered))
    return state, trainer._epoch_totals(totals, rows_out, n)
