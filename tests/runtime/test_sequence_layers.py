"""Sequence layers: the parameters their registry entries declare (names, shapes, count) are those
of the Flax modules they build, for every recurrent cell and option, stacked too; and the shapes
their rules give are those the modules compute."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.lower import SpecModule, lower

MODELS = [
    "lstm 48",  # the contract's seq_lstm: 11,434 parameters with its head
    "rnn 32 return_sequences=true\nlstm 32 bidirectional=true",
    "rnn 5 relu bidirectional=true",
    "gru 8 bidirectional=true return_sequences=true\nflatten",
    "gru 7\ndense 4",
    "lstm 6 return_sequences=true\ngru 6 return_sequences=true\nrnn 6",
    "conv1d 8 3 relu padding=same stride=2\nmaxpool1d 2 padding=same\navgpool1d 2 stride=1\nglobal_maxpool",
    "conv1d 4 3 bias=false\nglobal_avgpool",
]


def declared(program) -> dict[str, tuple[int, ...]]:
    """Every parameter the registry declares, keyed as `jax.tree_util.keystr` keys Flax's tree."""
    out = {}
    for layer in program.layers:
        entry = reg.layer(layer.kind)
        for name, dims in (entry.weights(layer.input_shape, layer.args) if entry.learns else {}).items():
            out["".join(f"[{part!r}]" for part in (layer.name, *name.split("/")))] = tuple(dims)
    return out


@pytest.mark.parametrize("layers", MODELS)
def test_declared_parameters_and_shapes_are_flaxs(layers: str) -> None:
    program, diagnostics = check_text(f"input 8x8\n{layers}\ndense 10 softmax\nloss categorical_crossentropy\n")
    assert program is not None, [d.message for d in diagnostics]
    x = np.zeros((2, 8, 8), np.float32)
    variables = lower(program).module.init(jax.random.key(0), x)
    found = {jax.tree_util.keystr(path): leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(variables)}
    assert {key.removeprefix("['params']"): dims for key, dims in found.items()} == declared(program)
    total = sum(reg.layer(layer.kind).count(layer.input_shape, layer.args) for layer in program.layers)
    assert total == sum(int(np.prod(dims)) for dims in found.values())
    for i, layer in enumerate(program.layers, 1):  # each layer's output, as its shape rule gives it
        module = SpecModule(program.layers[:i], fused_output=False)
        out = jax.eval_shape(lambda module=module: module.init_with_output(jax.random.key(0), x)[0])
        assert out.shape == (2, *layer.output_shape), layer.name


def test_the_contracts_lstm_count() -> None:
    program, _ = check_text("input 8x8\nlstm 48\ndense 10 softmax\n")
    assert sum(reg.layer(layer.kind).count(layer.input_shape, layer.args) for layer in program.layers) == 11434
