"""Every registry entry trains: one tiny epoch of each layer, activation, initializer, loss,
optimizer, schedule, metric and built-in dataset, through `dlc.compile(...).fit(...)`, gives a
finite loss and updates every parameter. The cases are generated from the registry's tables, so
a new entry is trained here without anyone writing a test for it.

The context around an entry (an input, an output, labels) is chosen by what the entry needs (an
input rank the checker accepts, its loss's task), never by its name. An entry that no context
fits fails, naming itself: add a context for what it needs.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import dlc
from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.runtime import train
from dlc.runtime.train import init_state

N = 8  # examples; batches of half, so an epoch is two steps (a warm-up from 0 takes its first at 0)
BATCH = N // 2
RNG = np.random.default_rng(0)

# An input of each rank for a layer's example, with a first layer that keeps the shape and has
# parameters, so that a layer without parameters must pass gradients back for them to change.
# `layernorm` normalises the last axis, which must therefore have more than one value.
INPUTS_BY_RANK = {1: "64", 2: "8x8", 3: "8x8x2"}
SHAPE_KEEPING_FIRST_LAYER = "layernorm"

# Labels of N examples for each task a loss declares, and the output units that fit them.
LABELS_BY_TASK = {
    "categorical": (3, np.arange(N) % 3),
    "binary": (1, np.arange(N) % 2),
    "regression": (1, RNG.normal(size=(N, 1)).astype(np.float32)),
}
FEATURES = RNG.normal(size=(N, 4)).astype(np.float32)
TARGETS = LABELS_BY_TASK["regression"][1]  # what cases about something other than the loss fit


@pytest.fixture(autouse=True)
def one_program_per_step(monkeypatch):
    """Train as convolutions do on a CPU, one compiled step per mini-batch (the same training as
    the scan: test_per_step.py). The epoch's shuffle is then a program of its own, compiled once
    for every case instead of inside each case's epoch: about 0.4 s less compiling per case."""
    monkeypatch.setattr(train, "_has_convolution", lambda layers: True)


def entries(table: str) -> list:
    return [pytest.param(entry, id=entry.name) for entry in reg.TABLES[table]]


def task_data(task: str) -> tuple[int, np.ndarray]:
    """(output units, labels) for a task."""
    if task not in LABELS_BY_TASK:
        pytest.fail(f"no training context for the task `{task}`: add its labels to LABELS_BY_TASK")
    return LABELS_BY_TASK[task]


def loss_for(task: str) -> reg.Loss:
    """The first loss of the registry for a task: the scaffolding of cases about something else."""
    return next(loss for loss in reg.LOSSES if loss.task == task)


def spec(*, layers: str = "dense 8 relu", task: str = "regression", loss: reg.Loss | None = None,
         optimizer: str = "optimizer sgd lr=0.1", extra: str = "", head: str | None = None,
         batch: int = BATCH) -> str:
    """A spec on FEATURES: `layers`, then an output fitting the loss (its fused activation), then
    the loss's example, `optimizer` and any `extra` statements."""
    loss = loss or loss_for(task)
    units, _ = task_data(loss.task)
    output = head or f"dense {units} {loss.probability or 'linear'}"
    return f"{layers}\n{output}\n{loss.example}\n{optimizer}\nbatch {batch}\n{extra}\n"


def trained(text: str, x=None, y=None) -> dlc.Program:
    program = dlc.compile(text)
    program.fit(x, y, epochs=1)
    return program


def named_leaves(tree) -> dict[str, np.ndarray]:
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def assert_trained(program: dlc.Program) -> None:
    """The epoch's loss is finite, and every parameter array moved from where the same seed starts it."""
    session = program.trained
    assert math.isfinite(session.history[-1]["loss"]), session.history
    start = init_state(session.trainer, session.program.input_shape, session.program.seed)
    before, after = named_leaves(start.params), named_leaves(session.state.params)
    assert before, "the model has no parameters to train"
    assert not unchanged(before, after), f"parameters not updated: {unchanged(before, after)}"
    nan_or_inf = [name for name, leaf in after.items() if not np.isfinite(leaf).all()]
    assert not nan_or_inf, f"parameters not finite: {nan_or_inf}"
    if any(reg.layer(kind).stateful for kind in kinds(session.program.layers)):
        stats = named_leaves(start.batch_stats), named_leaves(session.state.batch_stats)
        assert not unchanged(*stats), f"batch statistics not updated: {unchanged(*stats)}"


def unchanged(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> list[str]:
    return [name for name in before if np.array_equal(before[name], after[name])]


def kinds(layers: tuple[ir.Layer, ...]) -> set[str]:
    """Every layer kind in the program, blocks and their bodies included."""
    return {kind for layer in layers for kind in (layer.kind, *kinds(layer.body))}


def test_every_table_of_entries_is_trained_here():
    """A new table of the registry needs its cases here; statements are what every case is made of."""
    assert set(reg.TABLES) - {"statement"} == set(TRAINED_TABLES)


@pytest.mark.parametrize("layer", [p for p in entries("layer") if not p.values[0].takes_tokens])
def test_layer_trains(layer: reg.Layer):
    """The layer's example on the first input rank its shape rule accepts, then a flat output (a
    layer that takes token ids, which comes first, in `test_token_layer_trains`)."""
    refused = {}
    for rank, shape in INPUTS_BY_RANK.items():
        text = spec(layers=f"input {shape}\n{SHAPE_KEEPING_FIRST_LAYER}\n{layer.example}\nflatten")
        program, diagnostics = check_text(text)
        if program is not None:
            break
        refused[rank] = [f"{d.code}: {d.message}" for d in diagnostics if d.is_error]
    else:
        pytest.fail(f"layer `{layer.name}`: its example `{layer.example}` takes no input of INPUTS_BY_RANK, "
                    f"add one it takes; by rank: {refused}")
    assert layer.name in kinds(program.layers)
    x = RNG.normal(size=(N, *program.input_shape)).astype(np.float32)
    assert_trained(trained(text, x, TARGETS))


@pytest.mark.parametrize("layer", [entry for entry in reg.LAYERS if entry.takes_tokens], ids=lambda entry: entry.name)
def test_token_layer_trains(layer: reg.Layer):
    """A layer that takes token ids, first on ids it has vectors for (the IR says how many), with
    padding at the end, then a layer that takes the padding mask, then a flat output."""
    for after in (entry for entry in reg.LAYERS if entry.masked):
        text = spec(layers=f"input 6\n{layer.example}\n{after.example}\nflatten")
        program, _ = check_text(text)
        if program is not None:
            break
    else:
        pytest.fail(f"layer `{layer.name}`: no layer that takes the mask follows its example `{layer.example}`")
    x = RNG.integers(1, program.token_vocab, size=(N, 6))
    x[:, 4:] = 0
    assert_trained(trained(text, x.astype(np.int32), TARGETS))


@pytest.mark.parametrize("activation", entries("activation"))
def test_activation_trains(activation: reg.Activation):
    """On a hidden layer: a gradient must pass through it to the layer below."""
    assert_trained(trained(spec(layers=f"dense 8 {activation.name}"), FEATURES, TARGETS))


@pytest.mark.parametrize("initializer", entries("initializer"))
def test_initializer_trains(initializer: reg.Initializer):
    """The only layer's kernel (so that even all zeros gets a gradient)."""
    text = spec(layers=f"input {FEATURES.shape[1]}", head=f"dense 1 init={initializer.name}")
    assert_trained(trained(text, FEATURES, TARGETS))


@pytest.mark.parametrize("loss", entries("loss"))
def test_loss_trains(loss: reg.Loss):
    """The loss's example on labels of its task, after the output activation it fuses with."""
    assert_trained(trained(spec(loss=loss), FEATURES, task_data(loss.task)[1]))


@pytest.mark.parametrize("optimizer", entries("optimizer"))
def test_optimizer_trains(optimizer: reg.Optimizer):
    assert_trained(trained(spec(optimizer=optimizer.example), FEATURES, TARGETS))


@pytest.mark.parametrize("schedule", entries("schedule"))
def test_schedule_trains(schedule: reg.Schedule):
    assert_trained(trained(spec(extra=schedule.example), FEATURES, TARGETS))


@pytest.mark.parametrize("metric", entries("metric"))
def test_metric_trains_under_every_task_it_accepts(metric: reg.Metric):
    """Under each task's loss that the checker accepts the metric with (at least one), it is
    reported finite."""
    accepted = []
    for task in dict.fromkeys(loss.task for loss in reg.LOSSES):
        text = spec(task=task, extra=metric.example)
        if check_text(text)[0] is None:
            continue
        accepted.append(task)
        program = trained(text, FEATURES, task_data(task)[1])
        assert_trained(program)
        assert math.isfinite(program.trained.history[-1][metric.name]), (task, program.trained.history)
    assert accepted, f"metric `{metric.name}`: its example `{metric.example}` checks with no task's loss"


@pytest.mark.parametrize("dataset", entries("dataset"))
def test_dataset_loads_and_trains(dataset: reg.Dataset):
    """The dataset's example, normalized, into one unit per class; what loads is what the
    registry declares (the checker trusts those facts without loading anything)."""
    if not dataset.classes:
        pytest.fail(f"dataset `{dataset.name}` has no classes: add a context for its task")
    loss = loss_for("categorical")
    text = spec(layers=f"{dataset.example} normalize=standard\ndense 8 relu",
                head=f"dense {dataset.classes} {loss.probability}", loss=loss,
                batch=-(-dataset.examples // 2))  # two steps, as every case takes
    program = trained(text)
    prepared = program.trained.prepared
    splits = [split for split in (prepared.train, prepared.val, prepared.test) if split is not None]
    assert prepared.train.x.shape[1:] == dataset.features
    assert (sum(len(split.x) for split in splits), len(prepared.labels)) == (dataset.examples, dataset.classes)
    assert_trained(program)


TRAINED_TABLES = {"layer": test_layer_trains, "activation": test_activation_trains,
                  "initializer": test_initializer_trains, "loss": test_loss_trains,
                  "optimizer": test_optimizer_trains, "schedule": test_schedule_trains,
                  "metric": test_metric_trains_under_every_task_it_accepts, "dataset": test_dataset_loads_and_trains}
