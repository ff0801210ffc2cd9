"""The figures of docs/transfer-learning.md: test accuracy on digits 5-9 of the network that starts from
the 0-4 run with its convolutional features frozen (specs/transfer/transfer.dl), or fine-tuned from
there (specs/transfer/finetune.dl), against the same network trained from scratch
(specs/transfer/scratch.dl), at each training-set size of
data/digits_5to9_N.npz and a few seeds (the seed of the new head's initialization, shuffling and
dropout; the 0-4 run is trained once, with the seed its spec names).

    python bench/transfer.py [--seeds 0 1 2] [--sizes 10 25 50 100] [--base RUN_DIR] [--json FILE]

Without `--base`, the 0-4 run is trained first into a temporary folder from specs/transfer/base.dl.
The data files come from `python scripts/make_transfer_data.py`. Prints a Markdown table (mean and
range over the seeds) and the base run's own test accuracy on 0-4. A benchmark, not a test: it
trains 3 x sizes x seeds small networks (about a minute on two CPU cores).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs" / "transfer"
SHIPPED_SIZE = 25  # the data file the shipped specs name
KINDS = {"transfer": "frozen features", "finetune": "fine-tuned features", "scratch": "from scratch"}
FROM_RUN = ("transfer", "finetune")  # the specs with `init`


def variant(name: str, size: int, seed: int, base: Path | None) -> str:
    """The text of a shipped spec on the data file of `size` examples per class, with `seed`, and,
    for the transfer spec, `init` naming `base`."""
    text = (SPECS / f"{name}.dl").read_text()
    text = text.replace(f"digits_5to9_{SHIPPED_SIZE}.npz", f"digits_5to9_{size}.npz")
    if base is not None:
        text, count = re.subn(r'^init "[^"]*"', f'init "{base.as_posix()}"', text, flags=re.M)
        assert count == 1, "the transfer spec has one init statement"
    return f"{text}seed {seed}\n"


def accuracy(text: str) -> float:
    import dlc

    program = dlc.compile(text, path=f"{SPECS}/bench.dl", base_dir=SPECS)
    program.fit()
    return program.evaluate()["accuracy"]  # the test split: the file's x_test/y_test


def train_base(folder: Path) -> float:
    import dlc

    program = dlc.load(SPECS / "base.dl")
    program.fit()
    program.save(folder)
    return program.evaluate()["accuracy"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument("--base", type=Path, help="a trained run of specs/transfer/base.dl (default: train one)")
    parser.add_argument("--json", type=Path, help="also write every accuracy as JSON here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.base.resolve() if args.base else Path(scratch) / "digits_0to4"
        base_accuracy = None if args.base else train_base(base)
        found = {(kind, size): [accuracy(variant(kind, size, seed, base if kind in FROM_RUN else None))
                                for seed in args.seeds]
                 for size in args.sizes for kind in KINDS}
    if base_accuracy is not None:
        print(f"base run (digits 0-4): test accuracy {base_accuracy:.4f}\n")
    print(f"test accuracy on digits 5-9 (350 held-out examples), mean [min, max] over seeds "
          f"{', '.join(map(str, args.seeds))}\n")
    print(f"| examples per class | {' | '.join(KINDS.values())} | frozen - scratch |")
    print(f"|---:|{'---:|' * len(KINDS)}---:|")
    for size in args.sizes:
        frozen, scratch = found["transfer", size], found["scratch", size]
        print(f"| {size} | {' | '.join(_shown(found[kind, size]) for kind in KINDS)} | "
              f"{statistics.mean(frozen) - statistics.mean(scratch):+.3f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"base_accuracy": base_accuracy, "seeds": args.seeds,
                                         "accuracy": {f"{k}_{n}": v for (k, n), v in found.items()}}, indent=2))


def _shown(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


if __name__ == "__main__":
    main()
