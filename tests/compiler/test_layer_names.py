"""Layer names (LANGUAGE.md v2): `name=` or the kind and its index in the expanded model, `_1` … `_N`
appended per `repeat` copy, unique in the model, and shown in the IR and the summary."""

from __future__ import annotations

from dlc.compiler.check import check_text
from dlc.compiler.summary import summary

TAIL = "\nloss mse\noptimizer sgd\n"


def names(layers) -> list[str]:
    return [name for layer in layers for name in (layer.name, *names(layer.body))]


def checked(layers: str):
    program, diagnostics = check_text("input 8\n" + layers + TAIL)
    assert program is not None, diagnostics
    return program


def codes(layers: str) -> list[tuple[int, str]]:
    _, diagnostics = check_text("input 8\n" + layers + TAIL)
    return sorted((d.span.line, d.code) for d in diagnostics if d.is_error)


def test_default_names_count_each_kind_named_or_not() -> None:
    program = checked("dense 8 relu\ndropout 0.1\ndense 8 name=mid\nlayer dense 1")
    assert names(program.layers) == ["dense_1", "dropout_1", "mid", "dense_3"]


def test_repeat_expands_before_counting_and_suffixes_given_names() -> None:
    program = checked("repeat 2 { dense 8 relu; dense 8 name=b }\nrepeat 2 { repeat 2 { dense 8 name=c } }\ndense 1")
    assert names(program.layers) == ["repeat_1", "dense_1", "b_1", "dense_3", "b_2",
                                     "repeat_2", "repeat_3", "c_1_1", "c_1_2", "repeat_4", "c_2_1", "c_2_2",
                                     "dense_9"]


def test_the_ir_json_and_the_summary_carry_names() -> None:
    program = checked("residual { dense 8 relu name=inner }\ndense 1 name=out")
    assert [(x["kind"], x["name"]) for x in program.to_json()["layers"]] == [("residual", "residual_1"), ("dense", "out")]
    assert program.to_json()["layers"][0]["body"][0]["name"] == "inner"
    assert "name" not in program.layers[1].args
    rows = summary(program).splitlines()
    assert any(row.split()[:3] == ["dense", "1", "out"] for row in rows)


def test_two_layers_with_one_name_are_an_error_at_both() -> None:
    assert codes("dense 8 name=a\ndropout 0.1\ndense 8 name=a\ndense 1") == [(2, "E310"), (4, "E310")]
    assert codes("dense 8 name=dense_2\ndense 8\ndense 1") == [(2, "E310"), (3, "E310")]
    assert codes("repeat 3 { dense 8 name=a }\ndense 8 name=a_3\ndense 1") == [(2, "E310"), (3, "E310")]


def test_only_an_unknown_statement_makes_default_names_unsure() -> None:
    assert codes("dense 8 nope=1\ndense 8 name=dense_1\ndense 1") == [(2, "E202"), (2, "E310"), (3, "E310")]
    # `dnese` may be a dense: the default name of the `dense` after it is unsure, so no E310.
    assert codes("dnese 8\ndense 8 name=dense_2\ndense 8\ndense 1") == [(2, "E200")]
    assert codes("dense 8 name=3\ndense 1") == [(2, "E300")]


def test_a_misspelled_name_option_gets_did_you_mean() -> None:
    _, diagnostics = check_text("input 8\ndense 1 nmae=out" + TAIL)
    assert [(d.code, d.hint) for d in diagnostics if d.is_error] == [("E202", "did you mean `name`?")]
