"""Arguments of the Python API, checked before any work, as scikit-learn validates parameters: a
`TypeError` for a value of the wrong type, a `ValueError` for one out of range, each naming the
argument and what it must be. Without this, a bad argument fails deep inside JAX tracing or NumPy
with a message about neither.

Pure Python: NumPy is imported only to look at arrays, which only training, evaluation and
prediction pass (and they import JAX anyway).
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any


def _kind(value: Any) -> str:
    """What a value is, in a message: `a str ('x')`, `a float (1.5)`, `None`."""
    if value is None:
        return "None"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"a {type(value).__name__} ({shown})"


def integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An int (NumPy integers too, never a bool) in [low, high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_kind(value)}")
    value = int(value)
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def seconds(name: str, value: Any) -> float:
    """A finite, non-negative real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {_kind(value)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds, 0 or more, got {value}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """A real number in [0, 1): a share of the examples to hold out."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a fraction of the examples, got {_kind(value)}")
    if not 0 <= value < 1:  # NaN fails this too
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def verbosity(value: Any) -> int:
    """Keras's `verbose`: 0 (or False) silent, 1 (or True) a progress bar on a terminal, 2 a line per epoch."""
    if value is True or value is False:
        return int(value)
    return integer("verbose", value, 0, 3)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_kind(value)}")
    return value


def callback(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function (or None), got {_kind(value)}")


def folder(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or pathlib.Path), got {_kind(value)}")


def devices(value: Any) -> int | str | None:
    """None, a positive number of devices, or "all"."""
    if value is None or value == "all":
        return value
    if isinstance(value, str):
        raise ValueError(f"devices must be a number of devices or 'all', got {value!r}")
    return integer("devices", value, 1)


def array(name: str, value: Any):
    """`value` as a NumPy array of examples: numbers (or, for labels, text), at least one row."""
    import numpy as np

    if value is None:
        raise TypeError(f"{name} must be an array of examples, got None")
    try:
        out = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists, objects NumPy cannot hold in one array
        raise ValueError(f"{name} is ragged: every example must have the same shape") from None
    if out.ndim == 0:
        raise ValueError(f"{name} must hold one entry per example, got a single value ({_kind(value)})")
    if len(out) == 0:
        raise ValueError(f"{name} has no examples")
    if out.dtype.kind not in "biufUSO":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {out.dtype}")
    return out


def features(name: str, value: Any):
    """Examples to train on, evaluate or predict: an array of numbers."""
    out = array(name, value)
    if out.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got an array of {'text' if out.dtype.kind in 'US' else out.dtype}")
    return out


def examples_and_labels(x: Any, y: Any, name: str = "x", label: str = "y"):
    """(x, y) as arrays with one label per example."""
    x, y = features(name, x), array(label, y)
    if len(x) != len(y):
        raise ValueError(f"{name} has {len(x)} examples but {label} has {len(y)}")
    return x, y


def pair(name: str, value: Any):
    """A validation pair (x_val, y_val), each checked as fit's x and y are."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        what = f"a {type(value).__name__} of {len(value)}" if isinstance(value, (tuple, list)) else _kind(value)
        raise TypeError(f"{name} must be a pair (x_val, y_val), got {what}")
    return examples_and_labels(value[0], value[1], f"{name}[0]", f"{name}[1]")
