"""Token ids and `embedding`: the ids stay int32 from the data to `nn.Embed`, ids the embedding has no
vector for and numbers are refused, the padding mask reaches the layers that take it (the same
text with more padding gives the same outputs), and the checker's rules on token input (E407, E408)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import dlc
from dlc.compiler import ir, masking
from dlc.compiler.check import check, check_text
from dlc.compiler.lower import SpecModule, lower
from dlc.grammar.parse import parse
from dlc.runtime import data as data_mod
from dlc.runtime.sources import DataError

HEAD = "dense 3 softmax\nloss categorical_crossentropy\noptimizer adam lr=0.01\nbatch 8\n"

# Models whose every layer after the embedding keeps the steps, or takes the mask and ends them.
MASKED = [
    "lstm 5",
    "gru 4 bidirectional=true",
    "rnn 3 relu return_sequences=true\nlstm 4 return_sequences=true bidirectional=true\nglobal_maxpool",
    "conv1d 4 3 relu padding=same\ndropout 0.2\ngru 3 return_sequences=true\nlayernorm\nglobal_avgpool",
    "residual { conv1d 4 3 padding=same }\nlstm 4 bidirectional=true",
]


def texts(steps: int, rng: np.random.Generator) -> np.ndarray:
    """Six sequences of ids in 2..19, of lengths 1 to 6, padded with 0 to `steps`."""
    ids = rng.integers(2, 20, size=(6, steps))
    ids[np.arange(steps) >= np.arange(1, 7)[:, None]] = 0
    return ids.astype(np.int32)


@pytest.mark.parametrize("layers", MASKED)
def test_more_padding_gives_the_same_outputs(layers: str) -> None:
    short, _ = check_text(f"input 6\nembedding 20 4\n{layers}\n{HEAD}")
    long, _ = check_text(f"input 15\nembedding 20 4\n{layers}\n{HEAD}")
    assert masking.plan(short.layers).given, "no layer of the model takes the mask"
    x = texts(6, np.random.default_rng(0))
    padded = np.concatenate([x, np.zeros((6, 9), np.int32)], axis=1)
    variables = lower(short).module.init(jax.random.key(1), x)
    out = np.asarray(lower(short).module.apply(variables, x))
    np.testing.assert_allclose(np.asarray(lower(long).module.apply(variables, padded)), out, rtol=0, atol=1e-6)


def test_padding_changes_an_unmasked_model_and_no_mask_is_made() -> None:
    """After a layer that moves the steps (a `valid` convolution) the mask is dropped: the control
    that shows the test above can fail."""
    short, _ = check_text(f"input 6\nembedding 20 4\nconv1d 4 2\nlstm 5\n{HEAD}")
    long, _ = check_text(f"input 15\nembedding 20 4\nconv1d 4 2\nlstm 5\n{HEAD}")
    assert masking.plan(short.layers) == masking.MaskPlan(None)
    x = texts(6, np.random.default_rng(0))
    padded = np.concatenate([x, np.zeros((6, 9), np.int32)], axis=1)
    variables = lower(short).module.init(jax.random.key(1), x)
    assert not np.allclose(lower(short).module.apply(variables, x), lower(long).module.apply(variables, padded))


def test_the_mask_plan_follows_the_registry_flags() -> None:
    program, _ = check_text("input 9\nembedding 20 4\nconv1d 4 3 padding=same\nlstm 4 return_sequences=true\n"
                            "maxpool1d 2\nglobal_avgpool\n" + HEAD)
    plan = masking.plan(program.layers)
    assert (plan.start, plan.given) == ("embedding_1", {"lstm_1"})  # the pool after `maxpool1d` gets none
    assert plan.zeroed == {"embedding_1", "conv1d_1", "lstm_1"}


def test_embedding_parameters_and_shape_are_flaxs() -> None:
    program, _ = check_text("input 7\nembedding 11 3\nflatten\n" + HEAD)
    layer = program.layers[0]
    assert (layer.output_shape, layer.params, program.token_vocab) == ((7, 3), 33, 11)
    variables = lower(program).module.init(jax.random.key(0), np.zeros((2, 7), np.int32))
    assert variables["params"]["embedding_1"]["embedding"].shape == (11, 3)


def test_token_ids_stay_int32_from_the_data_to_the_model() -> None:
    rng = np.random.default_rng(0)
    x, y = texts(6, rng), np.arange(6) % 3
    prepared = data_mod.prepare(x.astype(np.int64), y, task="categorical", input_shape=(6,), output_units=3,
                                val=0.0, test=0.0, normalize="none", shuffle=True, seed=0, tokens=20)
    assert prepared.train.x.dtype == np.int32 and np.array_equal(prepared.train.x, x)
    assert prepared.normalization["kind"] == "none"
    program = dlc.compile(f"input 6\nembedding 20 4\nlstm 5\n{HEAD}epochs 2")
    program.fit(np.tile(x, (4, 1)), np.tile(y, 4))
    assert program.trained.prepared.train.x.dtype == np.int32
    assert program.predict(x).shape == (6, 3)


@pytest.mark.parametrize(("x", "said"), [
    (np.full((4, 6), 1.0), "holds float64 values, but the model's `embedding` takes integer token ids"),
    (np.full((4, 6), 20), "`x[0, 0]` in the arrays is token id 20, but the model's `embedding` has vectors for "
                          "ids 0 to 19"),
    (np.full((4, 6), -1), "is token id -1"),
])
def test_numbers_and_ids_without_a_vector_are_refused(x: np.ndarray, said: str) -> None:
    with pytest.raises(DataError, match=said.replace("[", r"\[").replace("]", r"\]")):
        data_mod.prepare(x, np.arange(4) % 2, task="categorical", input_shape=(6,), output_units=2, val=0.0,
                         test=0.0, normalize="none", shuffle=True, seed=0, source="the arrays", tokens=20)


def test_a_sweep_of_a_token_model_trains(tmp_path) -> None:
    x = np.tile(texts(6, np.random.default_rng(0)), (4, 1))
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(24) % 3)
    program = dlc.compile(f'data "t.npz"\nembedding 20 4\ngru 3\n{HEAD.replace("lr=0.01", "lr=[0.01, 0.1]")}'
                          "epochs 2", base_dir=tmp_path)
    program.fit()
    assert len(program.ir.sweep.members) == 2


def test_stablehlo_of_a_token_model_takes_int32() -> None:
    from dlc.runtime.export import stablehlo_text

    program, _ = check_text(f"input 6\nembedding 20 4\nlstm 5\n{HEAD}")
    assert "tensor<1024x6xi32>" in stablehlo_text(program)


# --- the checker ------------------------------------------------------------------------------

TEXT = ir.Data("csv", "m.csv", "/m.csv", 0.2, 0.0, "none", True, "topic", (10,), "classification", None, None, True,
               False, tokens=True, vocab=300)


def codes(text: str, data: ir.Data | None = None) -> list[tuple[int, str]]:
    spec, syntax = parse(text, "t.dl")
    _, diagnostics = check(spec, arrays=data, extra=syntax)
    return [(d.span.line, d.code) for d in diagnostics if d.is_error]


@pytest.mark.parametrize(("text", "data", "want"), [
    ("lstm 4\n" + HEAD, TEXT, [(1, "E407")]),  # token ids need an embedding first
    ("repeat 2 { dense 4 }\n" + HEAD, TEXT, [(1, "E407")]),  # the first layer inside a block, once
    ("embedding 200 4\nlstm 4\n" + HEAD, TEXT, [(1, "E408")]),
    ("embedding 300 4\nlstm 4\n" + HEAD, TEXT, []),
    ("input 10\ndense 4\nembedding 10 4\nflatten\n" + HEAD, None, [(3, "E407")]),
    ("input 10\nrepeat 2 { embedding 10 4 }\nflatten\n" + HEAD, None, [(2, "E407")]),  # its second copy
    ("input 4x3\nembedding 10 4\nflatten\n" + HEAD, None, [(2, "E407")]),
    ("data iris\nembedding 10 4\nflatten\n" + HEAD, None, [(2, "E407")]),  # numbers
    ("input 10\nembedding 10 4\nlstm 4\n" + HEAD, None, []),  # data unknown: ids are what it takes
    ("input 10\ndense 4 ~\nembedding 10 4\nflatten\n" + HEAD, None, [(2, "E100")]),  # a broken first layer
])
def test_token_rules(text: str, data: ir.Data | None, want: list) -> None:
    assert codes(text, data) == want


def test_token_data_without_the_data_statement_is_what_the_ir_says() -> None:
    program, _ = check_text(f"input 10\nembedding 10 4\nlstm 4\n{HEAD}")
    assert dataclasses.replace(program, layers=program.layers[1:]).token_vocab is None
    assert program.token_vocab == 10


def test_a_module_of_token_ids_is_built_by_spec_module() -> None:
    program, _ = check_text(f"input 6\nembedding 20 4\nglobal_avgpool\n{HEAD}")
    module = SpecModule(program.layers, fused_output=False)
    x = texts(6, np.random.default_rng(2))
    out = module.apply(module.init(jax.random.key(0), x), x)
    assert out.shape == (6, 3)
