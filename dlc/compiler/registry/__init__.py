"""The one registry: every statement, layer, activation, loss, optimizer, schedule, metric,
initializer and built-in dataset of the language, declared once.

The checker, the summary, `dlc explain`, the docs, did-you-mean suggestions, the lowering and
the contract tests all read these tables. Adding a layer is one `Layer(...)` entry in `layers.py`
or `sequence.py`.
Shape rules are pure Python; builders import Flax and Optax inside, through the `lib`
namespace the lowering passes in, so importing this module stays cheap.
"""

from __future__ import annotations

from dlc.compiler.registry.base import (
    FRACTION,
    GREATER_THAN_ZERO,
    KINDS,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY_OPEN,
    REQUIRED,
    Entry,
    Param,
    Range,
    Shape,
    ShapeError,
    option,
    positional,
    show_shape,
)
from dlc.compiler.registry.functions import ACTIVATIONS, INITIALIZERS, Activation, Initializer
from dlc.compiler.registry.layers import LAYER_COMMON, Layer
from dlc.compiler.registry.layers import LAYERS as _LAYERS
from dlc.compiler.registry.objectives import LOSSES, METRICS, Loss, Metric
from dlc.compiler.registry.optimizers import OPTIMIZER_COMMON, OPTIMIZERS, SCHEDULES, Optimizer, Schedule
from dlc.compiler.registry.sequence import MASK_CODE, SEQUENCE_LAYERS, padding_mask
from dlc.compiler.registry.statements import (
    CSV_OPTIONS,
    DATA_OPTIONS,
    DATASETS,
    SETTINGS,
    TEXT_OPTIONS,
    Dataset,
    Setting,
)

__all__ = [
    "ACTIVATIONS", "CSV_OPTIONS", "DATASETS", "DATA_OPTIONS", "FRACTION", "GREATER_THAN_ZERO", "INITIALIZERS",
    "KINDS", "LAYERS", "LAYER_COMMON", "LOSSES", "METRICS", "NON_NEGATIVE", "OPTIMIZERS", "OPTIMIZER_COMMON", "POSITIVE",
    "PROBABILITY_OPEN", "REQUIRED", "RNG_STREAMS", "SCHEDULES", "SETTINGS", "TABLES", "Activation", "Dataset",
    "Entry", "Initializer", "Layer", "Loss", "Metric", "Optimizer", "Param", "Range", "Schedule", "Setting",
    "MASK_CODE", "Shape", "ShapeError", "TEXT_OPTIONS", "layer", "lookup", "names", "option", "padding_mask",
    "positional", "show_shape",
]

LAYERS: tuple[Layer, ...] = (*_LAYERS, *SEQUENCE_LAYERS)

TABLES: dict[str, tuple[Entry, ...]] = {
    "layer": LAYERS,
    "activation": ACTIVATIONS,
    "initializer": INITIALIZERS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "metric": METRICS,
    "dataset": DATASETS,
    "statement": SETTINGS,
}

_BY_NAME: dict[str, dict[str, Entry]] = {
    table: {alias: e for e in entries for alias in (e.name, *e.aliases)} for table, entries in TABLES.items()
}


def lookup(table: str, name: str) -> Entry | None:
    """The entry called `name` (or one of its aliases) in `table`."""
    return _BY_NAME[table].get(name)


def names(table: str) -> list[str]:
    """Every name of a table, aliases included: the candidates for did-you-mean."""
    return list(_BY_NAME[table])


# The random streams a model's layers may draw from, each seeded while training.
RNG_STREAMS: tuple[str, ...] = tuple(sorted({entry.rng_stream for entry in LAYERS if entry.rng_stream}))


def layer(name: str) -> Layer:
    entry = lookup("layer", name)
    assert isinstance(entry, Layer)
    return entry
