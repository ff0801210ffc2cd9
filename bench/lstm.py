"""Recurrent training speed: an LSTM epoch of a dlc spec against a hand-written Flax LSTM
(`nn.RNN(nn.OptimizedLSTMCell)`) trained by bench/reference.py's epoch program (one jitted
`lax.scan` over the mini-batches, Adam), in one process, in alternation (reference, dlc,
reference, dlc, ...), so that a machine that slows down slows both alike.

Two cases: the digits read as 8 steps of 8 pixels (`input 8x8`, `lstm 64`, `dense 10 softmax`),
and padded token ids (`embedding`, then `lstm`, which reads each sequence to its last token:
the reference passes `seq_lengths` too). An epoch's time is the wall time between two
consecutive epoch ends; the figure is the median over epochs 2.. of every repetition (epoch 1
compiles). The load average is printed with it: other jobs on the machine only ever add time.

    .venv/bin/python bench/lstm.py [--epochs E] [--reps R]

Nothing here passes or fails: it prints a Markdown table to paste into bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import reference
from run import epoch_ends, fast_decile, per_epoch, pooled_ratio
from sklearn.datasets import load_digits

import dlc

LR = 1e-3
UNITS, CLASSES, BATCH = 64, 10, 32
VOCAB, DIM, STEPS, TEXTS = 1000, 32, 40, 2000
GOAL = 1.1  # issue 14: an LSTM epoch within 1.1x of the hand-written one


class DigitsLSTM(nn.Module):
    """`lstm 64` over 8 steps of 8 pixels, its last output into `dense 10` (logits)."""

    @nn.compact
    def __call__(self, x, train: bool):
        h = nn.RNN(nn.OptimizedLSTMCell(UNITS))(x)[:, -1]
        return nn.Dense(CLASSES, kernel_init=reference.GLOROT)(h)


class TokenLSTM(nn.Module):
    """`embedding 1000 32`, `lstm 64` read to each sequence's last token (`seq_lengths`), `dense 10`."""

    @nn.compact
    def __call__(self, x, train: bool):
        tokens = x.astype(jnp.int32)  # reference.fit initializes on float zeros
        steps = jnp.arange(tokens.shape[1])
        lengths = jnp.max(jnp.where(tokens != 0, steps, 0), axis=1) + 1
        h = nn.RNN(nn.OptimizedLSTMCell(UNITS))(nn.Embed(VOCAB, DIM)(tokens), seq_lengths=lengths)
        last = jnp.take_along_axis(h, (lengths - 1)[:, None, None], axis=1)[:, 0]
        return nn.Dense(CLASSES, kernel_init=reference.GLOROT)(last)


@dataclass(frozen=True)
class Case:
    label: str
    model: Callable[[], nn.Module]
    spec: str  # the dlc layers of the same model
    data: Callable[[], tuple[np.ndarray, np.ndarray]]


def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    spread = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return x.reshape(-1, 8, 8).astype(np.float32), y.astype(np.int32)


def token_texts() -> tuple[np.ndarray, np.ndarray]:
    """Texts of 5 to 40 ids (2..999), padded with 0; the label is the first token's id modulo 10."""
    rng = np.random.default_rng(0)
    x = rng.integers(2, VOCAB, size=(TEXTS, STEPS))
    x[np.arange(STEPS) >= rng.integers(5, STEPS + 1, size=TEXTS)[:, None]] = 0
    return x.astype(np.int32), (x[:, 0] % CLASSES).astype(np.int32)


CASES = (
    Case("digits 8x8, lstm 64, batch 32", DigitsLSTM, f"input 8x8\nlstm {UNITS}", digits),
    Case(f"{TEXTS} texts of {STEPS} token ids, embedding {VOCAB} {DIM}, lstm 64, batch 32", TokenLSTM,
         f"input {STEPS}\nembedding {VOCAB} {DIM}\nlstm {UNITS}", token_texts),
)


@dataclass(frozen=True)
class Contender:
    """What `run.epoch_ends` calls: `train(model, x, y, batch, epochs, on_epoch)`."""

    tag: str
    train: Callable


def contenders(case: Case) -> tuple[Contender, Contender]:
    def hand_written(model, x, y, batch, epochs, on_epoch):
        reference.fit(case.model(), x, y, batch=batch, epochs=epochs, lr=LR, on_epoch=on_epoch)

    def spec(model, x, y, batch, epochs, on_epoch):
        text = f"{case.spec}\ndense {CLASSES} softmax\nloss categorical_crossentropy\noptimizer adam lr={LR}\n" \
               f"batch {batch}\n"
        dlc.compile(text).fit(x, y, epochs=epochs, on_epoch=on_epoch)

    return Contender("reference", hand_written), Contender("dlc", spec)


@dataclass(frozen=True)
class Timed:
    """What `run.epoch_ends` reads of a case."""

    model: str
    batch: int
    epochs: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for case in CASES:
        x, y = case.data()
        runs: dict[str, list[list[float]]] = {"reference": [], "dlc": []}
        load = os.getloadavg()[0]
        for rep in range(args.reps):
            for contender in contenders(case):
                runs[contender.tag].append(per_epoch(epoch_ends(contender, Timed("lstm", BATCH, args.epochs), x, y,
                                                                args.epochs)))
            print(f"  {case.label}, repetition {rep + 1}/{args.reps}: " + "  ".join(
                f"{tag} {statistics.median(times[-1]) * 1e3:.1f} ms" for tag, times in runs.items()), file=sys.stderr)
        load = (load + os.getloadavg()[0]) / 2
        ratio = pooled_ratio(runs["dlc"], runs["reference"])
        rows.append(f"| {case.label} | {statistics.median(sum(runs['reference'], [])) * 1e3:.1f} ms | "
                    f"{statistics.median(sum(runs['dlc'], [])) * 1e3:.1f} ms | {ratio:.2f} | "
                    f"{pooled_ratio(runs['dlc'], runs['reference'], fast_decile):.2f} | {load:.1f} |")
        print(f"{case.label}: dlc/reference {ratio:.2f}, {'within' if ratio <= GOAL else 'NOT within'} {GOAL}x",
              file=sys.stderr)
    print("| case | reference epoch | dlc epoch | ratio (median) | ratio (fast decile) | load average |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
