'''The parts of an emitted program (`emit_py`) for what training weighs and reports beyond a
per-example mean: class weights, kernel penalties, the metrics of a whole split (confusion counts
and ranked scores) and the plateau schedule. Each mirrors a function of `dlc.runtime.measures` or
`dlc.runtime.stopping` (named in its docstring) step for step, so that the emitted file computes the
same numbers (tests/emit holds the two to the same history). Pure text: nothing here imports JAX.
'''

from __future__ import annotations

from dlc.compiler import ir, trainingfacts
from dlc.compiler import registry as reg

# `runtime.measures`: the whole split's metrics, class weights and penalties; `runtime.stopping.Plateau`.
MEASURES = '''
# --- what training weighs and reports beyond a mean -------------------------------------------


def ratio(a, b):
    """a / b, and 0 where b is 0 (scikit-learn's `zero_division=0`)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def class_average(counts, per_class):
    """A per-class score from confusion counts [matrix, truth, prediction]: for a binary output the
    positive class's (the mean over several labels), else the macro average over the classes that
    occur in the labels or the predictions (as scikit-learn counts them)."""
    tp = np.diagonal(counts, axis1=1, axis2=2)
    predicted, actual = counts.sum(axis=1), counts.sum(axis=2)
    scores = per_class(tp, predicted, actual)
    if BINARY:
        return float(np.mean(scores[:, 1]))
    present = (predicted + actual)[0] > 0
    return float(np.mean(scores[0][present])) if present.any() else 0.0


def rank_auc(score, label, mask):
    """The exact area under the ROC curve of the real rows: (sum of the positives' ranks - P(P+1)/2)
    / (P N), tied scores given their average rank; NaN when the split holds one class only."""
    real = mask > 0
    s, positive = score[real].astype(np.float64), label[real] > 0.5
    p = int(positive.sum())
    negatives = len(s) - p
    if p == 0 or negatives == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts) + (counts + 1) / 2.0
    return float((ranks[inverse.reshape(-1)][positive].sum() - p * (p + 1) / 2.0) / (p * negatives))


def split_logs(fetched, n, prefix=""):
    """The loss and every metric of a split from its fetched sums, by name in alphabetical order:
    means divided by `n` here (None: the program divided them), the others from the counts and rows."""

    def mean(key):
        return float(fetched[key]) if n is None else float(fetched[key]) / n

    out = {f"{prefix}loss": mean("loss")}
    for name in METRIC_NAMES:
        if name in PER_CLASS:
            value = class_average(np.asarray(fetched["confusion"]), PER_CLASS[name])
        elif name in RANKED:
            value = rank_auc(*(np.asarray(fetched["rows"][k]) for k in ("score", "label", "mask")))
        else:
            value = mean(name)
        out[f"{prefix}{name}"] = value
    return dict(sorted(out.items()))


def means(totals, n):
    """The mean of every summed quantity over `n` examples; counts and rows as they are."""
    return {k: v if k in ("confusion", "rows") else v / n for k, v in totals.items()}


def combine(totals, sums):
    """Running sums with one more chunk's: counts added, rows joined."""
    if totals is None:
        return sums
    return {
        k: jax.tree.map(lambda a, b: jnp.concatenate([a, b]), totals[k], v) if k == "rows" else totals[k] + v
        for k, v in sums.items()
    }


def epoch_totals(totals, rows, n):
    """An epoch's means, counts and rows (each part's flattened, then joined)."""
    totals = means(totals, n)
    if RANKED:
        flat = [{k: v.reshape(-1) for k, v in part.items()} for part in rows]
        totals["rows"] = jax.tree.map(lambda *parts: jnp.concatenate(parts), *flat)
    return totals


def batch_rows(out, y, mask):
    """What a batch adds to the split's gathered rows (for `auc`), or nothing."""
    if not RANKED:
        return {}
    return {"score": predictions(out)[:, 0], "label": y[:, 0].astype(jnp.float32), "mask": mask}


def penalty(params):
    """l1 x sum |w| + l2 x sum w^2 over each penalized layer's parameters but its biases (a
    recurrent cell's input and recurrent kernels both), in model order; None without any."""
    total = None
    for name, (l1, l2) in PENALTIES.items():
        for path, w in jax.tree_util.tree_leaves_with_path(params[name]):
            if path[-1].key == "bias":
                continue
            for c, term in ((l1, jnp.abs), (l2, jnp.square)):
                if c != 0.0:
                    part = c * jnp.sum(term(w))
                    total = part if total is None else total + part
    return total


def class_weights(y):
    """`class_weight=balanced`: each class's weight n / (classes x its examples) in the training
    labels (0 for a class with none), as float32; None without the option."""
    if not CLASS_WEIGHT:
        return None
    y = np.asarray(y).reshape(len(y), -1)[:, 0]
    index = @CLASS_INDEX@
    counts = np.bincount(index, minlength=CLASSES)
    return np.asarray([len(index) / (CLASSES * int(c)) if c else 0.0 for c in counts], np.float32)


def epoch_rate(step_size, factor):
    """The rate of an epoch's last update as float32 computes it, in the fewest digits that read
    back as that float32."""
    return float(np.format_float_scientific(np.float32(step_size) * np.float32(factor), unique=True))


class Plateau:
    """`schedule plateau`: whether to multiply the rate by its factor after this epoch: once the
    monitored quantity (as early stopping's) has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, rule):
        self.rule, self.best, self.waited = rule, None, 0

    def update(self, logs):
        rule = self.rule
        monitor = rule["monitor"] if rule else ("val_loss" if "val_loss" in logs else "loss")
        value, delta = logs[monitor], PLATEAU["min_delta"]
        if self.best is None or (
            value > self.best + delta if rule and rule["mode"] == "max" else value < self.best - delta
        ):
            self.best, self.waited = value, 0
            return False
        self.waited += 1
        if self.waited < PLATEAU["patience"]:
            return False
        self.waited = 0
        return True
'''

# `runtime.measures.confusion`, for each kind of output.
_CONFUSION = {
    "categorical": '''
def confusion(pred, y, mask):
    """A batch's confusion counts (real rows only): [0, true class, predicted class]."""
    return jnp.zeros(CONFUSION, jnp.int32).at[0, y, jnp.argmax(pred, axis=-1)].add(mask.astype(jnp.int32))
''',
    "binary": '''
def confusion(pred, y, mask):
    """A batch's confusion counts (real rows only): [unit, true class, predicted class]."""
    truth, guess = (y > 0.5).astype(jnp.int32), (pred > 0.5).astype(jnp.int32)
    unit = jnp.broadcast_to(jnp.arange(CONFUSION[0]), truth.shape)
    return jnp.zeros(CONFUSION, jnp.int32).at[unit, truth, guess].add(mask.astype(jnp.int32)[:, None])
''',
}

# How the emitted step finds each example's class for its weight (`runtime.measures.example_weights`).
_WEIGHT_INDEX = {"categorical": "yb", "binary": "(yb[:, 0] > 0.5).astype(jnp.int32)"}
_CLASS_INDEX = {"categorical": "y.astype(np.int64)", "binary": "(y > 0.5).astype(np.int64)"}


def with_confusion(text: str, program: ir.Program) -> str:
    """The file with its batch sums counting the confusion matrix where a metric reads it."""
    counts = '        if CONFUSION:\n            sums["confusion"] = confusion(pred, y, mask)\n'
    return text.replace("@CONFUSION_SUM@\n", counts if trainingfacts.counts_confusion(program) else "")


def measures(program: ir.Program) -> str:
    """The functions of the part, its class index written for the program's task."""
    return MEASURES.replace("@CLASS_INDEX@", _CLASS_INDEX.get(program.task, "y.astype(np.int64)"))


def weight_index(program: ir.Program) -> str:
    """The expression of each batch example's class (`yb`), which picks its weight."""
    return _WEIGHT_INDEX.get(program.task, "yb")


def settings(program: ir.Program, literal) -> str:
    """The constants the part reads: the whole split's metrics, the penalties, the class weights'
    options and the plateau schedule's; and `confusion` where a metric counts."""
    entries = [reg.lookup("metric", name) for name in program.metrics]
    per_class = "".join(f"    {literal(e.name)}: lambda tp, predicted, actual: {e.code(program.task)},\n"
                        for e in entries if e.per_class is not None)
    counts = trainingfacts.counts_confusion(program)
    units = program.output_shape[-1]
    shape = trainingfacts.confusion_shape(program) if counts else None
    penalties = trainingfacts.penalty_coefficients(program)
    schedule = program.schedule
    plateau = {k: schedule.args[k] for k in ("factor", "patience", "min_delta")} \
        if reg.lookup("schedule", schedule.name).on_plateau else None
    weighted = bool(program.loss and program.loss.args.get("class_weight"))
    lines = [
        "# Metrics of the whole split: from its confusion counts (a score per class, then averaged), and ranked.",
        "PER_CLASS = {\n" + per_class + "}" if per_class else "PER_CLASS = {}",
        f"RANKED = {literal(tuple(e.name for e in entries if e.ranks))}",
        f"METRIC_NAMES = {literal(tuple(program.metrics))}",
        f"CONFUSION = {shape!r}  # the shape of the confusion counts: [matrix, true class, predicted class]",
        f"BINARY = {program.task == 'binary'}",
        "# Kernel penalties (`l1=`, `l2=`) by layer: (l1, l2), added to the training loss.",
        f"PENALTIES = {literal(penalties)}",
        f"CLASS_WEIGHT, CLASSES = {weighted}, {units if program.task == 'categorical' else 2}  # `class_weight=balanced`",
        f"PLATEAU = {literal(plateau) if plateau else None}  # `schedule plateau`",
    ]
    text = "\n".join(lines)
    if counts:
        text += "\n\n\n" + _CONFUSION[program.task].strip("\n")
    return text
