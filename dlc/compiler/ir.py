"""The checked program: names resolved to registry entries, defaults filled, shapes inferred.

Everything downstream (summary, emitters, lowering, runtime) reads only this, and trusts it:
the checker has proved every rule of the language before an IR exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    kind: str
    name: str  # unique in the model: the key of its parameters
    args: dict[str, Any]
    input_shape: Shape | None
    output_shape: Shape | None
    params: int | None  # trainable parameters, this layer and its block
    line: int
    body: tuple[Layer, ...] = ()  # repeat: every iteration's layers in order; residual: the block
    frozen_params: int | None = 0  # parameters `trainable=false` freezes, this layer and its block
    # "run": its parameters come from the `init` run (a block: all of its layers' do); else "fresh".
    init: str = "fresh"

    @property
    def frozen(self) -> bool:
        """A layer whose parameters training leaves as they are (`trainable=false` on it or a block around it)."""
        return self.args.get("trainable") is False


def leaves(layers: tuple[Layer, ...]) -> list[Layer]:
    """The layers inside every block, in model order: those that hold the parameters."""
    return [leaf for layer in layers for leaf in (leaves(layer.body) if layer.body else [layer])]


@dataclass(frozen=True)
class Init:
    """`init "RUN_DIR"`: the run folder the matching layers' parameters come from, and the hash of its
    spec.dl when the spec was checked (the runtime refuses a run whose spec has changed since)."""

    path: str
    strict: bool
    spec_sha256: str


@dataclass(frozen=True)
class Data:
    """Where examples come from, with the facts the checker could learn without loading them."""

    source: str  # "builtin", "csv" or "npz"
    name: str  # the dataset name or the file name as written
    path: str | None  # the resolved file path, for files
    val: float
    test: float
    normalize: str
    shuffle: bool
    target: str | None
    features: Shape | None  # shape of one example before `input` re-shaping
    task: str  # "classification", "regression", "multilabel" or "unknown" (decided when loaded)
    classes: int | None  # for classification, when known
    target_width: int | None  # for regression and multi-label data, when known
    has_val: bool  # validation data exists (a `val=` fraction or `x_val` in the file)
    has_test: bool
    examples: int | None = None  # examples before any is held out, when known (built-ins; data once loaded)
    tokens: bool = False  # examples are integer token ids (text data), to go through an `embedding` first
    vocab: int | None = None  # token ids are below this (text data: the `vocab=` option, reserved ids included)
    missing: str = "error"  # a CSV's missing cells: "error", "mean" (or most frequent category) or "drop" their rows
    text: str | None = None  # the CSV column of text read as tokens (`text=`), the only feature then
    tokenize: str = "word"  # how that text splits into tokens: "word" or "char"
    # Each categorical CSV column and its one-hot width (categories of the training split), in column order.
    categorical: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Named:
    """An optimizer, loss or schedule: its registry name and every argument, defaults filled."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyStop:
    patience: int
    monitor: str
    min_delta: float
    restore_best: bool
    mode: str  # "min" or "max"


@dataclass(frozen=True)
class SweepAxis:
    """One list of a sweep spec."""

    name: str  # as a member's label names it: `lr`, `seed`, `dropout_1.rate` (a layer's name, then the parameter)
    values: tuple  # the list's values, checked, in the order written
    line: int


@dataclass(frozen=True)
class Sweep:
    """A spec with lists: one member per combination of their values, in source order, the last list
    varying fastest. Each member is an ordinary Program (its `sweep` None, its `source` the spec's text
    with one value in place of each list): the IR of that spec checked alone."""

    axes: tuple[SweepAxis, ...]
    members: tuple[Program, ...]
    labels: tuple[str, ...]  # one per member, `lr=1e-3,seed=0`: values as written, usable as a folder name
    # Members that differ only in values that change no shape (`Param.shape_free`), in member order:
    # each group can train as one program, vmapped over its members.
    groups: tuple[tuple[int, ...], ...]

    def to_json(self) -> dict:
        """The axes, labels and groups; the members as a count (each is its label's spec checked alone,
        and a sweep may have 1,024 of them)."""
        return {"axes": [asdict(axis) for axis in self.axes], "members": len(self.members),
                "labels": list(self.labels), "groups": [list(group) for group in self.groups]}


@dataclass(frozen=True)
class Program:
    name: str
    path: str
    data: Data | None
    input_shape: Shape | None
    layers: tuple[Layer, ...]
    output_shape: Shape | None
    params: int | None
    output_activation: str
    loss: Named | None
    # The training loss works on pre-activation outputs: the final softmax/sigmoid is fused
    # into the loss (its from-logits form) or the output is linear (already logits).
    from_logits: bool
    optimizer: Named | None
    schedule: Named
    batch: int
    epochs: int
    early_stop: EarlyStop | None
    metrics: tuple[str, ...]
    seed: int
    source: str = field(default="", repr=False)
    frozen_params: int | None = 0
    init: Init | None = None
    # Set on the program a sweep spec checks to: its first member, with every member here.
    sweep: Sweep | None = field(default=None, repr=False)
    # `class_weight=balanced`: each class's weight, n / (classes x its examples) in the training split
    # (0 for a class it lacks). Known once the data is prepared: the runtime fills it in (`Session.prepare`).
    class_weights: tuple[float, ...] | None = None

    @property
    def task(self) -> str:
        """`categorical`, `binary` or `regression`, from the loss."""
        from dlc.compiler.registry import lookup

        return lookup("loss", self.loss.name).task if self.loss else "regression"

    @property
    def token_vocab(self) -> int | None:
        """The number of token ids the model's input takes, when it takes integer token ids (its
        first layer is an `embedding`: the checker allows one nowhere else); None when it takes numbers."""
        from dlc.compiler.registry import layer

        first = leaves(self.layers)[:1]
        takes = layer(first[0].kind).takes_tokens if first else None
        return takes(first[0].args) if takes else None

    def to_json(self) -> dict:
        out = asdict(replace(self, sweep=None))  # a sweep's members are not written out one by one
        out.pop("source")
        out["sweep"] = self.sweep.to_json() if self.sweep else None
        first = ("params", "frozen_params")
        return {**{k: out[k] for k in first}, **{k: v for k, v in out.items() if k not in first}}
