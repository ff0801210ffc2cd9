"""A layer is one registry entry: a copy of `dense` registered under another name for a test's
duration checks, fuses its softmax into the loss, summarizes and trains exactly as `dense` does.
And no module outside the registry names a layer, so that this stays true."""

from __future__ import annotations

import ast
import dataclasses
import io
import tokenize
from pathlib import Path

import jax
import numpy as np
import pytest

import dlc
from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.summary import summary

NAME = "dense_throwaway"
PACKAGE = Path(__file__).resolve().parents[2] / "dlc"

SPEC = """input 4
{layers}
loss categorical_crossentropy
optimizer sgd lr=0.1
batch 4
seed 0
"""

# Models in which the copy stands where `dense` would: its output activation fused (softmax),
# warned about (W103: relu, sigmoid), or reached through blocks and dropout.
MODELS = [
    "dense 8 relu\ndense 3 softmax",
    "dense 8 relu\ndense 3 relu",
    "dense 3 sigmoid",
    "dense 3",
    "repeat 2 { dense 8 relu }\nrepeat 1 { dense 3 softmax; dropout 0.1 }",
    "residual { dense 4 relu }\ndense 3 softmax\ndropout 0.2",
    "dense 3 softmax\nresidual { dense 3 relu }",
]


@pytest.fixture
def throwaway(monkeypatch) -> reg.Layer:
    """`dense` under another name, in the registry's tables until the test ends."""
    entry = dataclasses.replace(reg.layer("dense"), name=NAME)
    monkeypatch.setattr(reg, "LAYERS", (*reg.LAYERS, entry))
    monkeypatch.setitem(reg.TABLES, "layer", reg.LAYERS)
    monkeypatch.setitem(reg._BY_NAME["layer"], NAME, entry)
    return entry


def as_throwaway(text: str) -> str:
    return text.replace("dense ", f"{NAME} ")


def checked(text: str):
    program, diagnostics = check_text(text)
    return program, [(d.code, d.message) for d in diagnostics]


@pytest.mark.parametrize("layers", MODELS)
def test_it_checks_and_fuses_as_dense(throwaway, layers: str) -> None:
    program, diagnostics = checked(SPEC.format(layers=layers))
    copy, copy_diagnostics = checked(SPEC.format(layers=as_throwaway(layers)))
    assert program is not None and copy is not None, (diagnostics, copy_diagnostics)
    assert copy_diagnostics == diagnostics
    assert (copy.output_activation, copy.from_logits) == (program.output_activation, program.from_logits)
    assert as_dense(copy.layers) == program.layers
    assert NAME in kinds(copy.layers)


def test_the_cases_cover_fusion_and_w103(throwaway) -> None:
    programs = [checked(SPEC.format(layers=as_throwaway(layers))) for layers in MODELS]
    assert any(p.from_logits and p.output_activation == "softmax" for p, _ in programs)
    assert any(any(code == "W103" for code, _ in d) for _, d in programs)


def test_it_summarizes_as_dense(throwaway) -> None:
    layers = "repeat 2 { dense 8 relu }\ndense 3 softmax"
    program, _ = checked(SPEC.format(layers=layers))
    copy, _ = checked(SPEC.format(layers=as_throwaway(layers)))
    assert words(summary(copy).replace(NAME, "dense")) == words(summary(program))
    assert f"{NAME} 3 softmax" in summary(copy)


def words(text: str) -> list[str]:
    """The summary's words, without the rules whose width follows the longest label."""
    return [word for word in text.split() if set(word) != {"─"}]


def test_it_trains_as_dense(throwaway) -> None:
    # Flax draws a layer's initial weights from its name: the two models name their layers alike.
    layers = "dense 8 relu name=hidden\ndropout 0.1\ndense 3 softmax name=out"
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype(np.float32), np.arange(8) % 3
    sessions = []
    for text in (SPEC.format(layers=layers), SPEC.format(layers=as_throwaway(layers))):
        program = dlc.compile(text)
        program.fit(x, y, epochs=1)
        sessions.append(program.trained)
    dense, copy = sessions
    numbers = [[{k: v for k, v in epoch.items() if k != "epoch_time"} for epoch in s.history] for s in sessions]
    assert numbers[1] == numbers[0]
    for a, b in zip(jax.tree.leaves(dense.state.params), jax.tree.leaves(copy.state.params), strict=True):
        np.testing.assert_array_equal(a, b)


def as_dense(layers: tuple[ir.Layer, ...]) -> tuple[ir.Layer, ...]:
    """The IR with the copy's layers renamed `dense`: what checking the same model with `dense` gives."""
    return tuple(dataclasses.replace(layer, kind="dense" if layer.kind == NAME else layer.kind,
                                     name=layer.name.replace(NAME, "dense"), body=as_dense(layer.body))
                 for layer in layers)


def kinds(layers: tuple[ir.Layer, ...]) -> list[str]:
    return [kind for layer in layers for kind in (layer.kind, *kinds(layer.body))]


def test_no_module_outside_the_registry_names_a_layer() -> None:
    """A string literal that is a layer's name means a module tests a kind by name: give the layer a
    field in `registry.Layer` instead. Names that are also a table's or a parameter's (`activation`)
    cannot be told apart by text and are left out."""
    ambiguous = set(reg.TABLES) | {p.name for table in reg.TABLES.values() for e in table for p in e.params}
    layer_names = {name for e in reg.LAYERS for name in (e.name, *e.aliases)} - ambiguous
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "registry" in path.relative_to(PACKAGE).parts:
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING and _literal(token.string) in layer_names:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{token.start[0]}: {token.string}")
    assert not found, "layers named outside the registry:\n" + "\n".join(found)


def _literal(source: str) -> object:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):  # an f-string
        return None
