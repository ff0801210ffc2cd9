"""Write the data of the transfer-learning example (docs/transfer-learning.md) from scikit-learn's
bundled digits (nothing is downloaded), the same bytes on every run:

- `data/digits_0to4.npz`: every 0-4 digit, `x`/`y` for training and a held-out `x_test`/`y_test`
  (one fifth of each class);
- `data/digits_5to9_N.npz` for N in 10, 25, 50, 100: N examples of each of 5-9 to train on (`x`/`y`,
  each set inside the next larger one) and the same held-out test set in every file (`x_test`/
  `y_test`, 70 of each class, none of them ever in a training set).

`x` is the 64 pixels of the 8x8 image scaled from 0..16 to [0, 1] (float32; `input 8x8x1` re-shapes
it), `y` the digit (int64). Usage: `python scripts/make_transfer_data.py [--out DIR]` (default: the
repository's `data/`).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

SIZES = (10, 25, 50, 100)  # training examples per class of 5-9
TEST_PER_CLASS = 70  # held out per class of 5-9 (the smallest class, 8, has 174: 100 + 70 fit)
SEED = 0
ROOT = Path(__file__).resolve().parent.parent


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (np.asarray(x) / 16.0).astype(np.float32), np.asarray(y).astype(np.int64)


def shuffled_per_class(y: np.ndarray, classes: range, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """The indices of each class's examples, in a seeded random order."""
    return {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}


def split_0to4(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    order = shuffled_per_class(y, range(5), np.random.default_rng(SEED))
    test = np.concatenate([idx[: len(idx) // 5] for idx in order.values()])
    train = np.concatenate([idx[len(idx) // 5:] for idx in order.values()])
    train = np.random.default_rng(SEED + 1).permutation(train)  # classes mixed, as a data file would be
    return {"x": x[train], "y": y[train], "x_test": x[np.sort(test)], "y_test": y[np.sort(test)]}


def splits_5to9(x: np.ndarray, y: np.ndarray) -> dict[int, dict[str, np.ndarray]]:
    order = shuffled_per_class(y, range(5, 10), np.random.default_rng(SEED + 2))
    test = np.sort(np.concatenate([idx[:TEST_PER_CLASS] for idx in order.values()]))
    out = {}
    for n in SIZES:
        train = np.concatenate([idx[TEST_PER_CLASS:TEST_PER_CLASS + n] for idx in order.values()])
        train = np.random.default_rng(SEED + 3).permutation(train)
        out[n] = {"x": x[train], "y": y[train], "x_test": x[test], "y_test": y[test]}
    return out


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An NPZ that `numpy.load` reads (allow_pickle=False), byte-for-byte the same every time: numpy.savez
    stamps each member with the current time, so the archive is written here with a fixed one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="folder to write into (default: data/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    x, y = digits()
    files = {"digits_0to4.npz": split_0to4(x, y)}
    files.update({f"digits_5to9_{n}.npz": arrays for n, arrays in splits_5to9(x, y).items()})
    for name, arrays in files.items():
        write_npz(args.out / name, arrays)
        print(f"{args.out / name}: {len(arrays['y'])} to train on, {len(arrays['y_test'])} held out")


if __name__ == "__main__":
    main()
