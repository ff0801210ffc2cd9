"""The seeded split of examples into train, val and test, declared once for the two stages that
need it: the runtime splits the data it loaded (`runtime/data.py`), and the checker splits a CSV
file's rows the same way to learn the categories of its training part, which fix the one-hot
widths that `input` and the parameter counts depend on (`csvfacts.py`).

NumPy is imported inside the functions: the checker calls them only for a CSV file with text
columns held out in part (`dlc check` of every other spec imports no NumPy)."""

from __future__ import annotations

from typing import Any


def held_out_sizes(n: int, val: float, test: float) -> dict[str, int]:
    """Examples held out for `test` and `val` out of `n` (at least one each where asked)."""
    return {part: max(1, round(fraction * n)) if fraction > 0 else 0 for part, fraction in (("test", test), ("val", val))}


def split_indices(n: int, val: float, test: float, *, shuffle: bool, seed: int, strata: Any = None) -> dict:
    """Example indices per part: a seeded permutation (or the file order) cut into train, val, test;
    with `strata` (a class index per example) and `shuffle`, every held-out part takes each class in
    proportion. The held-out sizes must leave examples to train on (`held_out_sizes`)."""
    import numpy as np

    sizes = held_out_sizes(n, val, test)
    if not any(sizes.values()):
        return {"train": np.arange(n)}  # nothing held out: every epoch shuffles the training data anyway
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    if strata is None or not shuffle:
        train_end, val_end = n - sizes["val"] - sizes["test"], n - sizes["test"]
        parts = {"train": order[:train_end], "val": order[train_end:val_end], "test": order[val_end:]}
    else:
        parts = _stratified(order, np.asarray(strata), sizes)
    return {part: index for part, index in parts.items() if len(index)}


def _stratified(order, strata, sizes: dict[str, int]) -> dict:
    """Held-out parts (test first) that take every class in proportion to what is left of it; each
    part keeps the shuffled order."""
    import numpy as np

    pools = [order[strata[order] == c] for c in np.unique(strata)]  # each class in shuffled order
    left = np.array([len(pool) for pool in pools])
    taken = np.zeros_like(left)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    parts = {}
    for part, size in sizes.items():
        share = _apportion(size, left)
        parts[part] = np.concatenate([pool[t:t + s] for pool, t, s in zip(pools, taken, share, strict=True)])
        taken, left = taken + share, left - share
    parts["train"] = np.concatenate([pool[t:] for pool, t in zip(pools, taken, strict=True)])
    return {part: index[np.argsort(rank[index])] for part, index in parts.items()}


def _apportion(size: int, counts):
    """`size` whole examples shared in proportion to `counts`, largest remainders first."""
    import numpy as np

    quota = size * counts / counts.sum()
    share = np.floor(quota).astype(counts.dtype)
    share[np.argsort(share - quota, kind="stable")[:size - share.sum()]] += 1
    return share
