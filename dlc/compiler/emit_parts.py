'''The fixed parts of an emitted program (`emit_py`): the runtime's procedure written out as plain
JAX, Flax, Optax and NumPy (the data parts are in `emit_data`). Each part mirrors a function of
`dlc.runtime` (named in its docstring) step for step, so that the emitted file computes the same numbers; a change to one
of those functions must be made here too (tests/emit holds the two to the same history).
`@NAME@` marks a value `emit_py` fills in.
'''

from __future__ import annotations

from dlc.compiler.emit_data import DATA_PARTS

TEMPLATE_NAMES = ("MODEL", "NAME", "STREAMS", "WEIGHT_INDEX")

PARTS: dict[str, str] = dict(DATA_PARTS)

# --- training: `runtime.train.Trainer`, `init_state` and `runtime.loop.fit` -------------------

PARTS["engine"] = '''
# --- training ---------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainState:
    """Everything that changes while training; a pytree, so a whole epoch is one program."""

    params: dict
    batch_stats: dict
    opt_state: tuple


jax.tree_util.register_dataclass(TrainState, data_fields=["params", "batch_stats", "opt_state"], meta_fields=[])


def streams(key):
    """The key of every random stream the layers draw from while training."""
    return {stream: key for stream in @STREAMS@}


def forward(params, batch_stats, x, train, rng=None, rows=None):
    """Training outputs (logits for a fused loss) and the updated batch statistics."""
    variables = {"params": params}
    if batch_stats:
        variables["batch_stats"] = batch_stats
    if train and batch_stats:
        out, updates = MODEL.apply(
            variables, x, train=True, logits=True, rows=rows, rngs=streams(rng), mutable=["batch_stats"]
        )
        return out, updates["batch_stats"]
    out = MODEL.apply(variables, x, train=train, logits=True, rngs=streams(rng) if train else None)
    return out, batch_stats


def batch_sums(out, y, mask, per_example):
    """Masked sums of the loss and every per-example metric over a batch, and its confusion counts
    where a metric reads them."""
    sums = {"loss": jnp.sum(per_example * mask)}
    if METRICS or CONFUSION:
        pred = predictions(out)
        for name, metric in METRICS.items():
            sums[name] = jnp.sum(metric(pred, y) * mask)
@CONFUSION_SUM@
    return sums


def zeros():
    zeros = {name: jnp.zeros((), jnp.float32) for name in ("loss", *METRICS)}
    return zeros | ({"confusion": jnp.zeros(CONFUSION, jnp.int32)} if CONFUSION else {})


class Trainer:
    """The compiled programs of training with one optimizer, batch size and class weights."""

    def __init__(self, tx, batch, weights):
        self.tx, self.batch, self.weights = tx, batch, weights
        self.train_epoch = jax.jit(self.epoch, donate_argnums=(0,))
        self.evaluate_chunk = jax.jit(self.chunk_sums)

    def run(self, state, x, y, key, epoch):
        """One epoch of training: the new state and the mean training loss and metrics."""
        return self.train_epoch(state, x, y, key, epoch)

    def step(self, state, totals, x, y, idx, m, dropout_key, i):
        """One mini-batch `x[idx]` (`m` zeroes its padding rows): the update, and the running sums
        of the loss and metrics."""
        xb, yb = x[idx], y[idx]
        count = jnp.maximum(jnp.sum(m), 1.0)

        def objective(params):
            out, stats = forward(params, state.batch_stats, xb, True, jax.random.fold_in(dropout_key, i), m)
            per_example = per_example_loss(out, yb)
            if self.weights is not None:  # weighted in training only: evaluation reports the plain loss
                per_example = per_example * jnp.asarray(self.weights)[@WEIGHT_INDEX@]
            loss, extra = jnp.sum(per_example * m) / count, penalty(params)
            return (loss if extra is None else loss + extra), (out, stats, per_example, extra)

        (_, (out, stats, per_example, extra)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        out = jax.lax.stop_gradient(out)
        sums = batch_sums(out, yb, m, per_example)
        if extra is not None:  # the reported training loss is the one minimized, penalties included
            sums["loss"] = sums["loss"] + jax.lax.stop_gradient(extra) * jnp.sum(m)
        return (TrainState(params, stats, opt_state), jax.tree.map(jnp.add, totals, sums)), batch_rows(out, yb, m)

    def plan(self, n, key, epoch):
        """The epoch's batches: indices (steps, batch) of a permutation drawn on the device, a mask
        that is 0 for the padding of the last batch (one shape every epoch), and the dropout key."""
        shuffle_key, dropout_key = jax.random.split(jax.random.fold_in(key, epoch))
        order = jax.random.permutation(shuffle_key, n) if SHUFFLE else jnp.arange(n)
        steps = max(1, math.ceil(n / self.batch))
        pad = steps * self.batch - n
        index = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(steps, self.batch)
        mask = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((pad,), jnp.float32)]).reshape(steps, self.batch)
        return index, mask, dropout_key

    def epoch(self, state, x, y, key, epoch):
        """One epoch: shuffle on the device, scan over the mini-batches. Returns the new state and
        the mean training loss and metrics (in training mode, as Keras reports them)."""
        n = x.shape[0]
        index, mask, dropout_key = self.plan(n, key, epoch)

        def step(carry, inputs):
            i, idx, m = inputs
            return self.step(*carry, x, y, idx, m, dropout_key, i)

        (state, totals), rows = jax.lax.scan(step, (state, zeros()), (jnp.arange(index.shape[0]), index, mask))
        return state, epoch_totals(totals, [rows], n)

    def chunk_sums(self, params, batch_stats, x, y, mask):
        """Masked sums of loss and metrics over one evaluation chunk, and its rows."""
        out, _ = forward(params, batch_stats, x, False)
        sums = batch_sums(out, y, mask, per_example_loss(out, y))
        return sums | ({"rows": batch_rows(out, y, mask)} if RANKED else {})

    def evaluation_sums(self, state, split):
        totals = None
        for xb, yb, mask in split[1]:
            totals = combine(totals, self.evaluate_chunk(state.params, state.batch_stats, xb, yb, mask))
        return totals

    def evaluate(self, state, split):
        """Mean loss and metrics over a split made by `eval_set` (those of the whole split from its
        counts and rows)."""
        return split_logs(jax.device_get(self.evaluation_sums(state, split)), max(split[0], 1))


def eval_set(x, y):
    """(examples, chunks): a split cut into chunks of EVAL_CHUNK rows, the last padded and masked."""
    chunks = []
    for start in range(0, max(len(x), 1), EVAL_CHUNK):
        xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        pad = EVAL_CHUNK - len(xb)
        mask = np.concatenate([np.ones(len(xb), np.float32), np.zeros(pad, np.float32)])
        xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
        yb = np.concatenate([yb, np.zeros((pad, *yb.shape[1:]), yb.dtype)])
        chunks.append(jax.device_put((xb, yb, mask)))
    return len(x), chunks


def init_state(tx, seed):
    """Initial parameters, batch statistics and optimizer state, drawn from the seed."""
    key = jax.random.fold_in(jax.random.key(seed), 0)

    def init(key):
        variables = MODEL.init({"params": key, **streams(key)}, jnp.zeros((1, *INPUT_SHAPE), INPUT_DTYPE), train=False)
        params = variables.get("params", {})
        return TrainState(params, variables.get("batch_stats", {}), tx.init(params))

    return jax.jit(init).lower(key).compile({"xla_backend_optimization_level": 0})(key)


class EarlyStopping:
    """Is this epoch the best so far, and should training stop (the spec's `early_stop`)."""

    def __init__(self, rule):
        self.rule, self.best, self.best_epoch, self.waited = rule, math.nan, 0, 0

    def update(self, epoch, logs):
        rule = self.rule
        monitor = rule["monitor"] if rule else ("val_loss" if "val_loss" in logs else "loss")
        value, delta = logs[monitor], rule["min_delta"] if rule else 0.0
        if math.isnan(self.best) or (
            value > self.best + delta if rule and rule["mode"] == "max" else value < self.best - delta
        ):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            return True, False
        self.waited += 1
        return False, rule is not None and self.waited >= rule["patience"]


def fit(train, val, epochs, seed):
    """Train for up to `epochs`, stopping early as the spec says. Returns the final state (the best
    epoch's weights where `restore_best`), the history (a dict per epoch) and the best epoch."""
    batch = max(1, min(BATCH, len(train[0])))  # a batch larger than the data is the whole data
    steps_per_epoch = max(1, math.ceil(len(train[0]) / batch))
    tx = make_optimizer(steps_per_epoch, steps_per_epoch * epochs)
    trainer = TRAINER(tx, batch, class_weights(train[1]))
    # The schedule's factor at each epoch's last update, for the `lr` column.
    counts = np.arange(1, epochs + 1, dtype=np.int32) * steps_per_epoch - 1
    unit = unit_schedule(steps_per_epoch, steps_per_epoch * epochs)
    factors = np.broadcast_to(np.asarray(unit(counts), np.float32), counts.shape)
    plateau = Plateau(EARLY_STOP) if PLATEAU else None
    state = init_state(tx, seed)
    x, y = jax.device_put(train[0]), jax.device_put(train[1])
    val_set = eval_set(*val) if val is not None else None
    copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
    keep_best = EARLY_STOP is not None and EARLY_STOP["restore_best"]
    stopper, best, history = EarlyStopping(EARLY_STOP), None, []
    base_key = jax.random.fold_in(jax.random.key(seed), 1)
    start_loss = trainer.evaluate(state, eval_set(train[0][:EVAL_CHUNK], train[1][:EVAL_CHUNK]))["loss"]
    if (initial_penalty := penalty(state.params)) is not None:  # the watched training loss holds it
        start_loss += float(initial_penalty)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        state, train_metrics = trainer.run(state, x, y, base_key, epoch)
        val_sums = trainer.evaluation_sums(state, val_set) if val_set else {}
        # The one host sync of the epoch: its sums, and the learning rate it trained with.
        step_size = optax.tree_utils.tree_get(state.opt_state, "step_size")
        fetched = jax.device_get((train_metrics, val_sums, step_size))
        logs = {"epoch": epoch, **split_logs(fetched[0], None)}
        logs |= split_logs(fetched[1], val_set[0], "val_") if val_set else {}
        logs["lr"] = epoch_rate(fetched[2], factors[epoch - 1])
        logs["epoch_time"] = time.perf_counter() - started
        for quantity in ("loss", "val_loss"):
            if quantity in logs and not math.isfinite(logs[quantity]):
                raise SystemExit(f"training diverged at epoch {epoch}: `{quantity}` is {logs[quantity]}")
        if math.isfinite(start_loss) and logs["loss"] > 1e3 * max(start_loss, 1e-6):
            raise SystemExit(
                f"training diverged at epoch {epoch}: `loss` grew from {start_loss:.4g} before "
                f"training to {logs['loss']:.4g}"
            )
        history.append(logs)
        print(
            f"epoch {epoch}/{epochs}: "
            + ", ".join(
                f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}"
                for k, v in logs.items()
                if k not in ("epoch", "epoch_time")
            )
        )
        is_best, stop = stopper.update(epoch, logs)
        if plateau is not None and plateau.update(logs):
            reduced = jax.device_put(np.float32(fetched[2]) * np.float32(PLATEAU["factor"]))
            opt_state = optax.tree_utils.tree_set(state.opt_state, step_size=reduced)
            state = TrainState(state.params, state.batch_stats, opt_state)
        if is_best and keep_best:
            best = copy({"params": state.params, "batch_stats": state.batch_stats})
        if stop:
            break
    if best is not None:
        state = TrainState(best["params"], best["batch_stats"], state.opt_state)
    return trainer, state, history, stopper.best_epoch if EARLY_STOP else len(history)
'''

PARTS["scan_only"] = '''
TRAINER = Trainer
'''

PARTS["per_step"] = '''
class StepTrainer(Trainer):
    """The same epoch as `Trainer.run`, one compiled step per mini-batch called from Python: XLA's
    CPU backend runs the backward pass of convolutions far slower inside a loop than as a program
    of its own, so on a CPU this trains such models several times faster, to the same numbers."""

    def __init__(self, tx, batch, weights):
        super().__init__(tx, batch, weights)
        self.one_step = jax.jit(self.indexed_step, donate_argnums=(0, 1))
        self.plan_epoch = jax.jit(lambda key, epoch, n: self.plan(n, key, epoch), static_argnums=(2,))
        self.zeros = jax.jit(zeros)
        self.mean = jax.jit(means)

    def indexed_step(self, state, totals, x, y, index, mask, dropout_key, i):
        idx = jax.lax.dynamic_index_in_dim(index, i, keepdims=False)
        m = jax.lax.dynamic_index_in_dim(mask, i, keepdims=False)
        return self.step(state, totals, x, y, idx, m, dropout_key, i)

    def run(self, state, x, y, key, epoch):
        n = x.shape[0]
        index, mask, dropout_key = self.plan_epoch(key, epoch, n)
        totals, rows = self.zeros(), []
        for i in range(index.shape[0]):
            (state, totals), batch = self.one_step(state, totals, x, y, index, mask, dropout_key, i)
            rows.append(batch)
        totals = self.mean(totals, n)
        if RANKED:
            totals["rows"] = jax.tree.map(lambda *parts: jnp.concatenate(parts), *rows)
        return state, totals


TRAINER = StepTrainer if jax.default_backend() == "cpu" else Trainer
'''

PARTS["main"] = '''
# --- the command ------------------------------------------------------------------------------


def predict(variables, x):
    """The model's outputs (its output activation applied) for normalized examples x."""
    return MODEL.apply(variables, x, train=False)


def write_history(path, history):
    """history.csv: a row per epoch, as `dlc run` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        for row in history:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train @NAME@ as `dlc run` would.")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / f"@NAME@-{time.strftime('%Y%m%d-%H%M%S')}",
        help="the folder history.csv is written to (default: runs/@NAME@-TIMESTAMP)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs at most (default: {EPOCHS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the seed of all randomness (default: {SEED})")
    args = parser.parse_args(argv)
    data, _ = prepare_data(args.seed)
    trainer, state, history, best_epoch = fit(data["train"], data.get("val"), args.epochs, args.seed)
    write_history(args.out / "history.csv", history)
    print(f"@NAME@: {len(history)} epochs, weights of epoch {best_epoch}")
    for part, split in data.items():
        metrics = trainer.evaluate(state, eval_set(*split))
        print(f"{part:<6} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    print(f"history: {args.out / 'history.csv'}")


if __name__ == "__main__":
    main()
'''
