"""Preparing data for training: split it (seeded, stratified), encode its labels, fit
normalization on the training part and shape it for the device. `sources` reads it.

Every problem with the data is one `DataError` (see `sources`) whose one-line message names the
data and, where it applies, the row and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlc.compiler.splitting import held_out_sizes, split_indices
from dlc.runtime.sources import HELD_OUT, DataError, Source, element_at


class DataWarning(UserWarning):
    """Data that trains, but may make the model worse than it looks (a class only held-out parts
    hold, a feature that never changes): given with `warnings.warn` when `fit` prepares the data."""


@dataclass(frozen=True)
class Split:
    """One part of the data, ready for the device."""

    x: np.ndarray  # float32, (n, *input_shape)
    y: np.ndarray  # int32 (n,) for task "categorical"; float32 (n, k) for "binary" and "regression"


@dataclass(frozen=True)
class Prepared:
    train: Split
    val: Split | None
    test: Split | None
    normalization: dict  # {"kind", "shift", "scale"}: x_normalized = (x - shift) / scale per feature
    labels: list | None  # labels[i] is the class that index i in y stands for; None for regression
    columns: tuple[str, ...] = ()  # the CSV columns of x's features, in order; () when known by position
    warnings: tuple[str, ...] = ()  # one line each: what about the data may make the model worse than it looks
    encoding: Any = None  # a CSV's `encoding.Encoding` (categories, fills, vocabulary); None: features as read

    def arrays(self) -> list[np.ndarray]:
        """Every split's x and y, in order (the splits present)."""
        return [a for split in (self.train, self.val, self.test) if split is not None for a in (split.x, split.y)]


# --- preparing --------------------------------------------------------------------------------


def prepare(x, y, *, task: str, input_shape: tuple[int, ...] | None, output_units: int | None,
            val: float, test: float, normalize: str, shuffle: bool, seed: int,
            given: dict | None = None, labels: list | None = None, source: str | Source = "the data",
            normalization: dict | None = None, tokens: int | None = None) -> Prepared:
    """Split (seeded; for classification each held-out part takes every class in proportion; `test`
    and `val` are fractions of the whole), encode labels, fit normalization on train only and apply
    it to every split, reshape x to `input_shape` (same element count, checked first).

    `task` is "categorical", "binary" or "regression" (from the loss); `labels` is a saved mapping to
    encode with (for evaluation), `normalization` one to apply (a trained model's) in place of one
    fitted here; `given` holds splits the data brought itself, {"val": (x, y), ...};
    `source` is the data's `Source` (from `load_source`), or just its name in messages, e.g.
    "`houses.csv`". shuffle=False splits by position: train first, then val, then test at the end.
    `tokens`: the model takes integer token ids below it (its `embedding`'s VOCAB): x stays int32,
    unnormalized.
    """
    source = source if isinstance(source, Source) else Source(source)
    given = given or {}
    x = _examples(x, "x", source, tokens)
    example = x.shape[1:]
    _check_input_shape(example, input_shape, source)
    ys = {"all": _targets(y, len(x), "y", source)}
    xs = {}
    for part, (part_x, part_y) in given.items():
        fraction = {"val": val, "test": test}[part]
        if fraction > 0:
            raise DataError(f"{source} brings its own `x_{part}`, and `{part}={fraction:g}` asks for another "
                            f"{part} split: drop `{part}=`")
        xs[part] = _examples(part_x, f"x_{part}", source, tokens)
        if xs[part].shape[1:] != example:
            raise DataError(f"examples in `x_{part}` of {source} have shape {_shape(xs[part].shape[1:])} "
                            f"but those in `x` have {_shape(example)}")
        ys[part] = _targets(part_y, len(xs[part]), f"y_{part}", source)
    encoded, labels = ENCODERS[task](ys, labels, output_units, source)
    all_y = encoded.pop("all")

    strata = all_y.reshape(len(x), -1)
    stratify = task != "regression" and strata.shape[1] == 1
    parts = _split_indices(len(x), val, test, shuffle=shuffle, seed=seed,
                           strata=strata[:, 0].astype(np.int64) if stratify else None, source=source)
    # A train part that is all of the data, in order (nothing held out), is the data: no copy.
    xs |= {part: x if len(index) == len(x) else x[index] for part, index in parts.items()}
    encoded |= {part: all_y[index] for part, index in parts.items()}
    notes = []
    if normalization is None and tokens is not None:  # ids, never scaled: `normalize=` on them is E607
        normalization = {"kind": "none", "shift": [], "scale": []}
    elif normalization is None:
        normalization, notes = _fit_normalization(xs["train"].reshape(len(xs["train"]), -1), normalize, source)
    if stratify:
        notes += _untrained_classes(encoded, labels)
    shape = tuple(input_shape or example)

    def ready(part: str) -> Split | None:
        if part not in xs:
            return None
        part_x = xs[part] if tokens is not None else _normalized(xs[part], normalization, source)
        return Split(part_x.reshape(len(part_x), *shape), encoded[part])

    return Prepared(ready("train"), ready("val"), ready("test"), normalization, labels, source.columns, tuple(notes))


def apply_normalization(x: np.ndarray, normalization: dict, input_shape, source: str | Source = "the data",
                        tokens: int | None = None) -> np.ndarray:
    """For evaluation/prediction on new data: flatten per example, (x - shift) / scale, reshape
    (token ids below `tokens`: as they are, int32)."""
    source = source if isinstance(source, Source) else Source(source)
    x = _examples(x, "x", source, tokens)
    _check_input_shape(x.shape[1:], input_shape, source)
    if tokens is not None:
        return x.reshape(len(x), *(input_shape or x.shape[1:]))
    if normalization["kind"] != "none":
        _check_input_shape(x.shape[1:], (len(normalization["shift"]),), source)
    return _normalized(x, normalization, source).reshape(len(x), *(input_shape or x.shape[1:]))


def _examples(x, name: str, source: Source, tokens: int | None = None) -> np.ndarray:
    """x as float64 (n, ...): numeric, one row per example, at least one example, all finite; as
    int32 token ids when `tokens` is given (`_token_ids`)."""
    try:
        x = np.asarray(x)
    except ValueError:  # NumPy refuses ragged nested lists
        raise DataError(f"`{name}` in {source} is ragged: every example needs the same shape") from None
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"`{name}` in {source} has no examples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"`{name}` in {source} holds {_holds(x.dtype)}, not numbers")
    if x.ndim < 2:
        raise DataError(f"`{name}` in {source} has shape {x.shape}: it needs one row per example, "
                        "shaped (examples, features...)")
    if x[0].size == 0:
        raise DataError(f"examples in `{name}` of {source} have no features")
    if tokens is not None:
        return _token_ids(x, name, tokens, source)
    # float32 stays float32 (what the device trains on: no float64 copy of a large set); other
    # numbers become float64. Normalization statistics are computed in float64 either way.
    x = x if x.dtype == np.float32 else x.astype(np.float64)
    _require_finite(x, name, source)
    return x


def _token_ids(x: np.ndarray, name: str, vocab: int, source: Source) -> np.ndarray:
    """x as int32 token ids, each one the model's `embedding` has a vector for (0 to vocab - 1): an
    id outside would read no vector at all (Flax's lookup gives NaN there), so it is a DataError."""
    if x.dtype.kind not in "biu":
        raise DataError(f"`{name}` in {source} holds {x.dtype} values, but the model's `embedding` takes "
                        "integer token ids")
    bad = (x < 0) | (x >= vocab)
    if bad.any():
        first = np.unravel_index(np.argmax(bad), x.shape)
        raise DataError(f"{element_at(name, first)} in {source} is token id {x[first]}, but the model's "
                        f"`embedding` has vectors for ids 0 to {vocab - 1}")
    return x.astype(np.int32, copy=False)


def _targets(y, n: int, name: str, source: Source) -> np.ndarray:
    """y as an array with one entry per example; text from a Python object array becomes str."""
    y = np.asarray(y)
    if y.dtype.kind == "O":  # e.g. a pandas column of class names
        y = np.array(y.tolist())
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"`x{name[1:]}` in {source} has {n} examples but `{name}` has "
                        f"{len(y) if y.ndim else 'a single value'}")
    return y


def _require_finite(values: np.ndarray, name: str, source: Source, float32: bool = False) -> None:
    """A DataError counting the NaN or infinite values (`float32`: made infinite by the cast to it)."""
    bad = ~np.isfinite(values)
    if bad.any():
        count = int(bad.sum())
        first = np.unravel_index(np.argmax(bad), values.shape)
        values = f"value{'s' * (count != 1)}"
        what = f"{values} beyond float32's range (±3.4e38)" if float32 else f"NaN or infinite {values}"
        where = source.value(name, first) if source.path else element_at(name, first)
        raise DataError(f"`{name}` in {source} has {count} {what}, the first at {where}")


def _check_input_shape(example: tuple[int, ...], input_shape, source: Source) -> None:
    """The model takes as many values per example as the data has (`input` may re-shape them)."""
    if input_shape is not None and math.prod(example) != math.prod(input_shape):
        raise DataError(f"examples in {source} have {math.prod(example)} values but the model takes "
                        f"{math.prod(input_shape)}")


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _holds(dtype: np.dtype) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects"}.get(dtype.kind, f"`{dtype}` values")


# --- labels -----------------------------------------------------------------------------------


def _class_labels(y: np.ndarray, name: str, source: Source) -> np.ndarray:
    """y as one class label per example: text, integers or booleans (whole floats become integers)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"`{name}` in {source} has shape {y.shape}: a categorical loss needs one class label "
                        f"per example (for one-hot rows, pass `{name}.argmax(1)`)")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(f"{source.value(name, (i,))} is {y[i]:g}, not a class label: a classification "
                            "loss needs integers or names")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuU":
        raise DataError(f"`{name}` in {source} holds {_holds(y.dtype)}, not class labels")
    return y


def _index(ys: dict[str, np.ndarray], labels: list, source: Source) -> dict[str, np.ndarray]:
    """Each label replaced by its position in `labels`; the first example whose label is not there
    is a DataError naming it and the model's classes."""
    position = {label: i for i, label in enumerate(labels)}
    out = {}
    for part, y in ys.items():
        found, inverse = np.unique(y, return_inverse=True)
        unknown = np.array([label not in position for label in found.tolist()])
        if unknown.any():
            first = int(np.argmax(unknown[inverse]))
            shown = ", ".join(f"`{label}`" for label in labels[:4]) + (", ..." if len(labels) > 4 else "")
            raise DataError(f"{source.value(_y_name(part), (first,))} is `{y[first]}`, which is not one of the "
                            f"model's {len(labels)} classes ({shown})")
        out[part] = np.array([position[label] for label in found.tolist()], dtype=np.int32)[inverse]
    return out


def _sorted_labels(ys: dict[str, np.ndarray]) -> list:
    """Every label found, sorted (numbers before text, should the parts disagree)."""
    found = {label for y in ys.values() for label in np.unique(y).tolist()}
    return sorted(found, key=lambda label: (isinstance(label, str), label))


def _categorical(ys, labels, output_units, source):
    ys = {part: _class_labels(y, _y_name(part), source) for part, y in ys.items()}
    labels = list(labels) if labels is not None else _sorted_labels(ys)
    if output_units is not None and len(labels) > output_units:
        raise DataError(f"labels in {source} have {len(labels)} classes but the output has {output_units} units")
    return _index(ys, labels, source), labels


def _binary(ys, labels, output_units, source):
    ys = {part: y.reshape(len(y), 1) if y.ndim == 1 else y for part, y in ys.items()}
    width = ys["all"].shape[1:]
    for part, y in ys.items():
        if y.shape[1:] != width:
            raise DataError(f"`{_y_name(part)}` in {source} has shape {y.shape} but `y` has {ys['all'].shape}")
    width = math.prod(width)
    if output_units is not None and width != output_units:
        raise DataError(f"targets in {source} have {width} column{'s' * (width != 1)} "
                        f"but the output has {output_units} unit{'s' * (output_units != 1)}")
    if width == 1:
        ys = {part: _class_labels(y, _y_name(part), source) for part, y in ys.items()}
        if labels is None:
            labels = _sorted_labels(ys)
            if set(labels) <= {0, 1}:
                labels = [0, 1]
            elif len(labels) > 2:
                shown = ", ".join(f"`{label}`" for label in labels[:4])
                raise DataError(f"a binary loss needs two classes, but {source} has {len(labels)} ({shown}"
                                f"{', ...' if len(labels) > 4 else ''})")
        indices = _index(ys, list(labels), source)
        return {part: y.astype(np.float32).reshape(-1, 1) for part, y in indices.items()}, list(labels)
    for part, y in ys.items():  # several labels per example, each 0 or 1
        flat = y.reshape(len(y), -1)
        bad = (flat != 0) & (flat != 1)
        if bad.any():
            first = np.unravel_index(np.argmax(bad), flat.shape)
            raise DataError(f"{element_at(_y_name(part), first)} in {source} is {flat[first]}: several labels per "
                            "example must each be 0 or 1")
    return {part: y.reshape(len(y), -1).astype(np.float32) for part, y in ys.items()}, [0, 1]


def _regression(ys, labels, output_units, source):
    out = {}
    for part, y in ys.items():
        name = _y_name(part)
        y = _numbers(y, name, source).reshape(len(y), -1)
        _require_finite(y, name, source)
        with np.errstate(over="ignore"):
            out[part] = y.astype(np.float32)
        _require_finite(out[part], name, source, float32=True)
    width = out["all"].shape[1]
    for part, y in out.items():
        if y.shape[1] != width:
            raise DataError(f"`{_y_name(part)}` in {source} has {y.shape[1]} targets per example but `y` has {width}")
    if output_units is not None and width != output_units:
        raise DataError(f"targets in {source} have {width} value{'s' * (width != 1)} per example "
                        f"but the output has {output_units} unit{'s' * (output_units != 1)}")
    return out, None


def _numbers(y: np.ndarray, name: str, source: Source) -> np.ndarray:
    """y as float64; text is read number by number, so that the first that is not one is named."""
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    values = np.empty(y.shape)
    for index in np.ndindex(y.shape):
        try:
            values[index] = float(y[index])
        except (TypeError, ValueError):
            raise DataError(f"{source.value(name, index)} is `{y[index]}`, not a number: "
                            "a regression loss needs numeric targets") from None
    return values


def _y_name(part: str) -> str:
    return "y" if part == "all" else f"y_{part}"


# Each task's encoder: (targets per part, saved labels, output units, source) -> (encoded per part, labels).
ENCODERS = {"categorical": _categorical, "binary": _binary, "regression": _regression}


# --- splitting and normalization --------------------------------------------------------------


def _split_indices(n: int, val: float, test: float, *, shuffle: bool, seed: int, strata: np.ndarray | None,
                   source: Source) -> dict[str, np.ndarray]:
    """Example indices per part (`splitting.split_indices`); too few examples is a DataError."""
    sizes = held_out_sizes(n, val, test)
    if sum(sizes.values()) >= n:
        raise DataError(f"{source} has {n} example{'s' * (n != 1)}: too few to hold out "
                        f"{sizes['val']} for `val` and {sizes['test']} for `test` and still train")
    return split_indices(n, val, test, shuffle=shuffle, seed=seed, strata=strata)


# Each kind's (shift, scale) per feature of the flattened training examples.
NORMALIZERS = {
    "standard": lambda flat: (flat.mean(0, dtype=np.float64), flat.std(0, dtype=np.float64)),
    "minmax": lambda flat: (flat.min(0).astype(np.float64), np.ptp(flat, 0).astype(np.float64)),
}


def _fit_normalization(flat: np.ndarray, kind: str, source: Source) -> tuple[dict, list[str]]:
    """Per-feature shift and scale from the training part, and warnings. A constant feature is only
    shifted (to 0: nothing to learn from, which a warning says); a statistic that overflows is a
    DataError naming its feature (an infinite scale would make the feature 0 everywhere)."""
    if kind == "none":
        return {"kind": "none", "shift": [], "scale": []}, []
    with np.errstate(over="ignore", invalid="ignore"):
        shift, scale = NORMALIZERS[kind](flat)
        spread = np.ptp(flat, 0)
    overflowed = ~(np.isfinite(shift) & np.isfinite(scale))
    if overflowed.any():
        j = int(np.argmax(overflowed))
        statistic = "range" if kind == "minmax" else "mean" if not np.isfinite(shift[j]) else "standard deviation"
        raise DataError(f"{source.feature(j)} cannot be normalized: its {statistic} overflows (its values reach "
                        f"{np.abs(flat[:, j]).max():g}); scale it down before training")
    constant = np.flatnonzero(spread == 0)
    notes = []
    if len(constant):
        them = "it" if len(constant) == 1 else "them"
        notes.append(f"{source.features(constant)} {'is' if len(constant) == 1 else 'are'} constant in the training "
                     f"split: `normalize={kind}` makes {them} 0, so the model learns nothing from {them}")
    scale = np.where(spread == 0, 1.0, scale)
    return {"kind": kind, "shift": shift.tolist(), "scale": scale.tolist()}, notes


def _untrained_classes(encoded: dict[str, np.ndarray], labels: list) -> list[str]:
    """A warning naming the classes that held-out parts hold but the training part lacks: the model
    cannot learn them, and every one of their examples counts against it."""
    trained = set(np.unique(encoded["train"]).tolist())
    held = {part: set(np.unique(y).tolist()) - trained for part, y in encoded.items() if part != "train"}
    missing = sorted(set().union(*held.values()))
    if not missing:
        return []
    one = len(missing) == 1
    names = ", ".join(f"`{labels[int(k)]}`" for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
    parts = " and ".join(part for part in HELD_OUT if held.get(part))
    return [f"class{'' if one else 'es'} {names} {'is' if one else 'are'} in the {parts} split but not in the "
            f"training split: the model cannot learn {'it' if one else 'them'}"]


def _normalized(x: np.ndarray, normalization: dict, source: Source) -> np.ndarray:
    """Examples flattened, normalized and in float32, which must hold every value: one that it
    cannot (too large, or made so by normalization) is a DataError naming its feature."""
    flat = x.reshape(len(x), -1)
    kind = normalization["kind"]
    with np.errstate(over="ignore", invalid="ignore"):
        out = flat
        if kind != "none":
            dtype = flat.dtype if flat.dtype == np.float32 else np.float64
            out = (flat - np.asarray(normalization["shift"], dtype)) / np.asarray(normalization["scale"], dtype)
        out = out.astype(np.float32, copy=False)
    finite = np.isfinite(out.min(0)) & np.isfinite(out.max(0))
    if not finite.all():
        j = int(np.argmin(finite))
        value = float(flat[int(np.argmin(np.isfinite(out[:, j]))), j])
        if kind == "none":
            raise DataError(f"{source.feature(j)} holds {value:g}, beyond float32's range (±3.4e38), which the "
                            "model computes in: scale it down, or set `normalize=standard`")
        made = (value - normalization["shift"][j]) / normalization["scale"][j]
        raise DataError(f"{source.feature(j)} holds {value:g}, which `normalize={kind}` makes {made:g}, "
                        "beyond float32's range (±3.4e38), which the model computes in")
    return out
