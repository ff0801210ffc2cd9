"""Token ids from an NPZ file (or arrays given to `fit`), refused by `dlc check` where they would be
refused, or silently wrong, once loaded: an `embedding` on an `x` of floats (E407, from the `.npy`
header alone) and `normalize=` on the ids an `embedding` takes (E607, at the value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlc.compiler import ir
from dlc.compiler.check import check, check_text
from dlc.compiler.datafacts import npz_facts
from dlc.compiler.diagnostics import Diagnostic
from dlc.grammar.parse import parse

MODEL = "embedding 10 4\nlstm 4\ndense 2 softmax\nloss categorical_crossentropy\noptimizer adam\n"
IDS = np.arange(48).reshape(8, 6) % 10


def save(folder: Path, **arrays: np.ndarray) -> None:
    np.savez(folder / "t.npz", **{"y": np.arange(8) % 2, **arrays})


def errors(text: str, folder: Path) -> list[Diagnostic]:
    return [d for d in check_text(text, "s.dl", folder)[1] if d.is_error]


def where(text: str, folder: Path) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.col) for d in errors(text, folder)]


@pytest.mark.parametrize(("dtype", "name"), [(np.float16, "float16"), (np.float32, "float32"),
                                             (np.float64, "float64")])
def test_an_embedding_on_floats_is_refused_at_the_layer(tmp_path: Path, dtype, name: str) -> None:
    save(tmp_path, x=IDS.astype(dtype))
    (found,) = errors(f'data "t.npz"\n{MODEL}', tmp_path)
    assert (found.code, found.span.line, found.span.col) == ("E407", 2, 1)
    assert found.message == f"`embedding` takes integer token ids, but `x` in `t.npz` holds {name} values"
    assert "`x.astype(np.int32)`" in found.hint


@pytest.mark.parametrize("split", ["val", "test"])
def test_floats_in_a_held_out_x_are_named(tmp_path: Path, split: str) -> None:
    save(tmp_path, x=IDS, **{f"x_{split}": IDS[:2].astype(np.float64), f"y_{split}": np.arange(2)})
    (found,) = errors(f'data "t.npz"\n{MODEL}', tmp_path)
    assert found.message.startswith(f"`embedding` takes integer token ids, but `x_{split}` in `t.npz` holds float64")


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integers_may_be_token_ids(tmp_path: Path, dtype) -> None:
    save(tmp_path, x=(IDS % 2).astype(dtype))
    assert errors(f'data "t.npz"\n{MODEL}', tmp_path) == []


def test_floats_are_numbers_for_any_other_first_layer(tmp_path: Path) -> None:
    save(tmp_path, x=IDS.astype(np.float32))
    assert errors('data "t.npz" normalize=standard\ndense 2 softmax\nloss categorical_crossentropy\n'
                  "optimizer adam\n", tmp_path) == []


def test_the_facts_name_the_first_x_of_floats(tmp_path: Path) -> None:
    save(tmp_path, x=IDS, x_val=IDS[:2].astype(np.float32), y_val=np.arange(2), x_test=IDS[:2].astype(np.float64),
         y_test=np.arange(2))
    assert npz_facts(tmp_path / "t.npz").float_x == ("x_val", "float32")
    save(tmp_path, x=IDS.astype(np.float64))
    assert npz_facts(tmp_path / "t.npz").float_x == ("x", "float64")
    save(tmp_path, x=IDS)
    assert npz_facts(tmp_path / "t.npz").float_x is None


@pytest.mark.parametrize("normalize", ["standard", "minmax"])
def test_normalized_ids_are_refused_at_the_value(tmp_path: Path, normalize: str) -> None:
    save(tmp_path, x=IDS)
    (found,) = errors(f'data "t.npz" val=0.25 normalize={normalize}\n{MODEL}', tmp_path)
    assert (found.code, found.span.line, found.span.col, found.span.end_col) == (
        "E607", 1, 33, 33 + len(normalize))
    assert found.message == f"`normalize={normalize}` cannot scale the token ids that `embedding` takes"
    assert found.hint == "token ids are indices into the vocabulary: drop `normalize=`"
    assert [(label.span.line, label.message) for label in found.labels] == [
        (2, "the model's first layer takes token ids")]


def test_normalize_none_and_numbers_are_fine(tmp_path: Path) -> None:
    save(tmp_path, x=IDS)
    assert errors(f'data "t.npz" normalize=none\n{MODEL}', tmp_path) == []
    assert errors('data "t.npz" normalize=standard\ninput 6\ndense 2 softmax\nloss categorical_crossentropy\n'
                  "optimizer adam\n", tmp_path) == []


def test_floats_and_normalize_are_two_errors_each_where_its_fix_goes(tmp_path: Path) -> None:
    save(tmp_path, x=IDS.astype(np.float32))
    assert where(f'data "t.npz" normalize=standard\n{MODEL}', tmp_path) == [("E607", 1, 24), ("E407", 2, 1)]


@pytest.mark.parametrize(("layers", "want"), [
    ("repeat 2 { embedding 10 4 }\n", [("E607", 1, 24), ("E407", 2, 12)]),  # said once, at the first copy
    ("input 6\ndense 6\nembedding 10 4\n", [("E407", 4, 1)]),  # not first: the model takes numbers
])
def test_only_a_first_layer_that_takes_ids_makes_normalize_wrong(tmp_path: Path, layers: str, want: list) -> None:
    save(tmp_path, x=IDS)
    assert where(f'data "t.npz" normalize=standard\n{layers}lstm 4\ndense 2 softmax\n', tmp_path) == want


def test_a_sweep_of_normalize_is_refused_at_its_value(tmp_path: Path) -> None:
    save(tmp_path, x=IDS)
    assert where(f'data "t.npz" normalize=[none, minmax]\n{MODEL}', tmp_path) == [("E607", 1, 31)]


def test_builtin_numbers_are_e407_alone() -> None:
    _, diagnostics = check_text(f"data iris normalize=standard\n{MODEL}")
    assert [(d.code, d.span.line) for d in diagnostics if d.is_error] == [("E407", 2)]


def recorded(source: str, normalize: str) -> ir.Data:
    return ir.Data(source, "y", None, 0.0, 0.0, normalize, True, None, (6,), "classification", 2, 1, False, False)


@pytest.mark.parametrize("source", ["arrays", "npz"])
def test_recorded_facts_of_normalized_ids_are_refused_at_the_layer(source: str) -> None:
    """Facts from a run folder, with no `normalize=` in the spec to point at: the layer is the place."""
    spec, syntax = parse(f"input 6\n{MODEL}", "s.dl")
    _, diagnostics = check(spec, arrays=recorded(source, "standard"), extra=syntax)
    assert [(d.code, d.span.line) for d in diagnostics if d.is_error] == [("E607", 2)]
    _, diagnostics = check(spec, arrays=recorded(source, "none"), extra=syntax)
    assert [d for d in diagnostics if d.is_error] == []


def test_arrays_given_to_fit_are_checked_with_the_specs_normalize(tmp_path: Path) -> None:
    """`fit(x, y)` checks the spec again with the arrays' facts and the spec's `normalize=`: the error
    is at that value still."""
    save(tmp_path, x=IDS)
    spec, syntax = parse(f'data "t.npz" normalize=minmax\n{MODEL}', "s.dl")
    _, diagnostics = check(spec, tmp_path, syntax, arrays=recorded("arrays", "minmax"))
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics if d.is_error] == [("E607", 1, 24)]
