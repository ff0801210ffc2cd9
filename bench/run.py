"""Training speed: dlc against the hand-written JAX program of bench/reference.py.

In one process, for each case (digits, a generated 60,000x784 set at batch 32 and 256, a CNN on
digit images), the reference and dlc train in turn, several times over (reference, dlc,
reference, dlc, ...), so that a machine that slows down or speeds up slows both alike. dlc is
driven through its public API (`dlc.compile(text).fit(x, y, epochs=..., on_epoch=...)`), so its
own per-epoch host work (history, early-stopping bookkeeping, the callback) is timed with it.

An epoch's time is the wall time between two consecutive `on_epoch` calls; the per-epoch figure
is the median over epochs 2.. of every repetition (epoch 1 compiles). The time to the first
finished epoch is measured in fresh processes, from just before the first call (imports done,
data prepared as NumPy arrays) to the first `on_epoch`: dlc twice, with an empty compilation
cache and then again with the cache the first run left. `import jax` and `import flax.linen` are
timed in fresh processes too.

    .venv/bin/python bench/run.py [--quick] [--epochs E] [--reps R] [--peers]

Nothing here passes or fails: it prints Markdown tables to paste into bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import numpy as np
import reference
from check_speed import bytecode_env, run_times
from peers import LR, PEERS, Contender, OnEpoch
from sklearn.datasets import load_digits

import dlc

TARGET = 1.05  # issue 4: dlc's epoch within 5% of the reference's
EXAMPLES, FEATURES, CLASSES = 60_000, 784, 10


@dataclass(frozen=True)
class Case:
    data: str  # "digits", "digit images" or "generated"
    model: str  # "mlp" or "cnn" (reference.MODELS)
    batch: int
    epochs: int  # per run, in full mode; enough that epochs 2.. take a few seconds
    examples: int = EXAMPLES  # of the generated set

    @property
    def label(self) -> str:
        """The column heading."""
        data = {"digits": "digits", "digit images": "CNN digits"}.get(self.data, f"{self.examples // 1000}k×{FEATURES}")
        return f"{data}, batch {self.batch}"


CASES = (
    Case("digits", "mlp", 32, 40),
    Case("generated", "mlp", 32, 6),
    Case("generated", "mlp", 256, 8),
    Case("digit images", "cnn", 32, 12),
)
QUICK_EXAMPLES, QUICK_EPOCHS = 6_000, 3

DLC_LAYERS = {
    "mlp": ("dense 64 relu", "dropout 0.5", "dense 64 relu", "dropout 0.5", "dense 10 softmax"),
    "cnn": ("conv2d 16 3x3 relu padding=same", "maxpool2d 2", "conv2d 32 3x3 relu padding=same", "flatten",
            "dropout 0.25", "dense 10 softmax"),
}


def dlc_spec(model: str, example_shape: tuple[int, ...], batch: int) -> str:
    """The spec text of the reference's model (the softmax is fused into the loss, as there)."""
    return "\n".join([f"model bench_{model}", f"input {'x'.join(map(str, example_shape))}", *DLC_LAYERS[model],
                      "loss categorical_crossentropy", f"optimizer adam lr={LR}", f"batch {batch}", ""])


def train_reference(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    reference.fit(reference.MODELS[model](), x, y, batch=batch, epochs=epochs, lr=LR, on_epoch=on_epoch)


def train_dlc(model: str, x, y, batch: int, epochs: int, on_epoch: OnEpoch) -> None:
    dlc.compile(dlc_spec(model, x.shape[1:], batch)).fit(x, y, epochs=epochs, on_epoch=on_epoch)


REFERENCE = Contender("reference", "hand-written linen scan (reference.py)", train_reference)
DLC = Contender("dlc", "dlc `fit`", train_dlc)
CONTENDERS = {c.tag: c for c in (REFERENCE, DLC, *PEERS)}


def dataset(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """float32 features and int32 labels. Digits are standardized; the generated set is Gaussian
    with labels from a random linear teacher, so that it is learnable."""
    if case.data == "generated":
        rng = np.random.default_rng(0)
        x = rng.standard_normal((case.examples, FEATURES), dtype=np.float32)
        teacher = rng.standard_normal((FEATURES, CLASSES), dtype=np.float32)
        return x, np.argmax(x @ teacher, axis=1).astype(np.int32)
    x, y = load_digits(return_X_y=True)
    spread = x.std(axis=0)
    x = ((x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).astype(np.float32)
    if case.data == "digit images":
        x = x.reshape(-1, 8, 8, 1)
    return x, y.astype(np.int32)


def epoch_ends(contender: Contender, case: Case, x, y, epochs: int) -> list[float]:
    """Seconds from just before the call to the end of each epoch."""
    ends = []
    gc.collect()  # the garbage of the run before is not this run's to collect
    start = time.perf_counter()
    contender.train(case.model, x, y, case.batch, epochs, lambda epoch, logs: ends.append(time.perf_counter()))
    return [end - start for end in ends]


def per_epoch(ends: list[float]) -> list[float]:
    """Epochs 2.. (the first one compiles)."""
    return list(np.diff(ends))


def compare(cases: list[Case], contenders: list[Contender], reps: int) -> dict:
    """{case label: {contender name: [per-epoch seconds of each repetition]}}, in alternation."""
    results = {}
    for case in cases:
        x, y = dataset(case)
        runs = {c.tag: [] for c in contenders if case.model in c.models}
        for rep in range(reps):
            for contender in contenders:
                if contender.tag in runs:
                    runs[contender.tag].append(per_epoch(epoch_ends(contender, case, x, y, case.epochs)))
            line = "  ".join(f"{tag} {statistics.median(times[-1]) * 1e3:.1f} ms" for tag, times in runs.items())
            print(f"  {case.label}, repetition {rep + 1}/{reps}: {line}", file=sys.stderr)
        results[case.label] = runs
    return results


def fast_decile(times: list[float]) -> float:
    """The 10th percentile: other jobs on the machine only ever add time, so the fast end of the
    distribution moves less with them than the median."""
    return float(np.percentile(times, 10))


def pooled_ratio(runs: list[list[float]], reference_runs: list[list[float]], statistic=statistics.median) -> float:
    """The statistic of every epoch of every repetition over the reference's."""
    return statistic(sum(runs, [])) / statistic(sum(reference_runs, []))


def ratio_cell(runs: list[list[float]], reference_runs: list[list[float]], statistic) -> str:
    """The pooled ratio, and the range of the per-repetition ratios."""
    pooled = pooled_ratio(runs, reference_runs, statistic)
    paired = [statistic(a) / statistic(b) for a, b in zip(runs, reference_runs)]
    spread = f" ({min(paired):.2f}–{max(paired):.2f})" if len(paired) > 1 else ""
    return f"{pooled:.2f}{spread}"


def speed_table(results: dict, contenders: list[Contender], statistic=statistics.median) -> str:
    labels = list(results)
    rows = ["| way of training | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for contender in contenders:
        cells = []
        for label in labels:
            runs = results[label].get(contender.tag)
            reference_runs = results[label][REFERENCE.tag]
            if runs is None:
                cells.append("n/a")
            elif contender is REFERENCE:
                cells.append(f"1.00 ({statistic(sum(runs, [])) * 1e3:.1f} ms)")
            else:
                cells.append(ratio_cell(runs, reference_runs, statistic))
        rows.append(f"| {contender.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def verdict(results: dict) -> list[str]:
    lines = []
    for label, runs in results.items():
        ratio = pooled_ratio(runs[DLC.tag], runs[REFERENCE.tag])
        lines.append(f"- {label}: dlc/reference {ratio:.2f} (fast decile "
                     f"{pooled_ratio(runs[DLC.tag], runs[REFERENCE.tag], fast_decile):.2f}), "
                     f"{'within' if ratio <= TARGET else 'NOT within'} {TARGET}x")
    return lines


# --- start-up, in fresh processes --------------------------------------------------------------


def first_epoch_child(tag: str, case: Case) -> None:
    """In a fresh process (`--first-epoch`): print the seconds to the first finished epoch."""
    contender = CONTENDERS[tag]
    for module in contender.requires:
        importlib.import_module(module)  # imports are timed apart
    x, y = dataset(case)
    print(json.dumps({"seconds": epoch_ends(contender, case, x, y, 1)[0]}))


def first_epoch(tag: str, case_index: int, examples: int, cache_dir: str | None = None) -> float:
    """Seconds to the first finished epoch in a fresh process; dlc's compilation cache in `cache_dir`."""
    argv = [sys.executable, __file__, "--first-epoch", tag, str(case_index), "--examples", str(examples)]
    env = {k: v for k, v in os.environ.items() if k != "DLC_CACHE_DIR"}
    done = subprocess.run(argv, capture_output=True, text=True, check=True,
                          env={**env, "DLC_CACHE_DIR": cache_dir} if cache_dir else env)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def startup_table(cases: list[Case], contenders: list[Contender], scratch: Path) -> str:
    """Time to the first finished epoch of each contender, and of dlc once more with the
    compilation cache its first run wrote."""
    rows: dict[str, list[float | None]] = {}
    for i, case in enumerate(cases):
        print(f"  first epoch, {case.label}", file=sys.stderr)
        cache = str(scratch / f"cache-{i}")
        for contender in contenders:
            if contender is DLC:
                rows.setdefault("dlc, empty compilation cache", []).append(first_epoch(DLC.tag, i, case.examples, cache))
                rows.setdefault("dlc, second run (cache filled)", []).append(first_epoch(DLC.tag, i, case.examples, cache))
            else:
                fits = case.model in contender.models
                rows.setdefault(contender.name, []).append(first_epoch(contender.tag, i, case.examples) if fits else None)
    reference_seconds = rows[REFERENCE.name]
    lines = ["| time to first finished epoch | " + " | ".join(case.label for case in cases) + " |",
             "|---" * (len(cases) + 1) + "|"]
    for name, seconds in rows.items():
        cells = ["n/a" if s is None else f"{s:.2f} s" + ("" if name == REFERENCE.name else f" ({s / r:.2f})")
                 for s, r in zip(seconds, reference_seconds)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def import_times(repeat: int, scratch: Path) -> str:
    env = bytecode_env(str(scratch / "pycache"))
    lines = []
    for code in ("pass", "import jax", "import flax.linen"):
        times = run_times([sys.executable, "-c", code], repeat, env)
        lines.append(f"- `python -c \"{code}\"`: {statistics.median(times):.2f} s (median of {repeat}, fresh processes)")
    return "\n".join(lines)


def machine() -> str:
    devices = ", ".join(sorted({d.platform.upper() for d in jax.devices()}))
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {devices}; Python "
            f"{platform.python_version()}, jax {jax.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EPOCHS} epochs, 1 repetition, a smaller generated set, start-up of the first case only")
    parser.add_argument("--epochs", type=int, help="epochs per run in every case (at least 2)")
    parser.add_argument("--reps", type=int, help="repetitions of each run (default 5, quick 1)")
    parser.add_argument("--peers", action="store_true", help="also time the installed peers (peers.py)")
    parser.add_argument("--first-epoch", nargs=2, metavar=("CONTENDER", "CASE"), help=argparse.SUPPRESS)
    parser.add_argument("--examples", type=int, help=f"size of the generated set (default {EXAMPLES:,}, quick {QUICK_EXAMPLES:,})")
    args = parser.parse_args(argv)
    examples = args.examples or (QUICK_EXAMPLES if args.quick else EXAMPLES)
    if args.first_epoch:
        first_epoch_child(args.first_epoch[0], replace(CASES[int(args.first_epoch[1])], examples=examples))
        return 0
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else None)
    if epochs is not None and epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch compiles and is not counted")
    reps = args.reps or (1 if args.quick else 5)
    cases = [replace(case, epochs=epochs or case.epochs, examples=examples) for case in CASES]

    contenders = [REFERENCE, DLC]
    if args.peers:
        for peer in PEERS:
            missing = peer.missing()
            if missing:
                print(f"skipping {peer.name}: {', '.join(missing)} not installed", file=sys.stderr)
            else:
                contenders.append(peer)

    with tempfile.TemporaryDirectory(prefix="dlc-bench-") as folder:
        scratch = Path(folder)
        os.environ["DLC_CACHE_DIR"] = str(scratch / "cache")  # never the user's cache
        print(f"per-epoch times, {reps} repetition(s), contenders in turn:", file=sys.stderr)
        results = compare(cases, contenders, reps)
        startup = startup_table(cases[:1] if args.quick else cases, contenders, scratch)
        imports = import_times(1 if args.quick else 5, scratch)

    print(f"\nMachine: {machine()}. Epochs per run: {', '.join(f'{c.label} {c.epochs}' for c in cases)}; "
          f"{reps} repetition(s).\n")
    print("Per-epoch time over the reference's (median of epochs 2.. of every run; in brackets the range "
          "of the per-repetition ratios):\n")
    print(speed_table(results, contenders))
    print("\nThe same with the 10th percentile of the epoch times in place of the median:\n")
    print(speed_table(results, contenders, fast_decile))
    print("\n" + "\n".join(verdict(results)))
    print("\nTime to the first finished epoch, fresh processes, imports excluded (ratio to the reference):\n")
    print(startup)
    print("\nImports:\n")
    print(imports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
