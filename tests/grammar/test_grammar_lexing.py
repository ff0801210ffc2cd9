"""The lexical rules of LANGUAGE.md, one test each: what text reads as which AST, with which spans."""

from __future__ import annotations

import pytest
from grammar_helpers import expected_span, fields, parse_clean

from dlc.grammar import nodes as n
from dlc.grammar.parse import parse


def keywords(spec: n.Spec) -> list[str]:
    return [s.keyword for s in spec.statements]


def single_value(text: str) -> n.Value:
    """The one positional value of `k TEXT`."""
    (statement,) = parse_clean(f"k {text}").statements
    (value,) = statement.positionals
    return value


# --- separators, empty statements, comments --------------------------------------------------


def test_semicolons_and_newlines_separate_the_same_statements():
    assert parse_clean("dense 64 relu; dropout 0.5; batch 32") == parse_clean("dense 64 relu\ndropout 0.5\nbatch 32")


@pytest.mark.parametrize("text", ["", "\n\n", ";;;", " ; \n ;\t\n", "# only a comment", "\n# one\n\n# two\n"])
def test_text_without_statements_is_an_empty_spec(text):
    assert parse_clean(text).statements == ()


def test_empty_statements_between_and_around_statements_are_skipped():
    assert keywords(parse_clean(";\n;; a ;; \n\n b;\n;")) == ["a", "b"]


def test_windows_line_endings_separate_statements():
    spec = parse_clean("a 1\r\nb 2\r\n")
    assert keywords(spec) == ["a", "b"]
    assert spec.statements[1].span.line == 2


def test_a_comment_runs_to_the_end_of_the_line_and_hides_separators():
    spec = parse_clean("a 1 # a comment; b 2 { [\nc 3")
    assert keywords(spec) == ["a", "c"]
    assert spec.statements[0].positionals == (n.Int(1),)


def test_a_hash_inside_a_string_is_text_not_a_comment():
    assert single_value('"a#b;c"') == n.Str("a#b;c")


# --- values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("64", n.Int(64)),
        ("0", n.Int(0)),
        ("-1", n.Int(-1)),
        ("60_000", n.Int(60_000)),
        ("0.5", n.Float(0.5)),
        ("-0.2", n.Float(-0.2)),
        (".5", n.Float(0.5)),
        ("-.5", n.Float(-0.5)),
        ("2.", n.Float(2.0)),
        ("1e-3", n.Float(1e-3)),
        ("3E-4", n.Float(3e-4)),
        ("1e+16", n.Float(1e16)),
        ("5.e3", n.Float(5e3)),
        ("1_000.25", n.Float(1000.25)),
    ],
)
def test_numbers(text, value):
    parsed = single_value(text)
    assert parsed == value
    assert type(parsed) is type(value)  # `2.` is a float, `64` an integer


@pytest.mark.parametrize(("text", "dims"), [("28x28x1", (28, 28, 1)), ("3x3", (3, 3)), ("1x2x3x4", (1, 2, 3, 4))])
def test_shapes(text, dims):
    assert single_value(text) == n.Shape(dims)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"data/train.csv"', "data/train.csv"),
        ('""', ""),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"C:\\data"', "C:\\data"),
        (r'"\\\""', '\\"'),
        ('"é ü 日本"', "é ü 日本"),
    ],
)
def test_strings_with_their_two_escapes(text, value):
    assert single_value(text) == n.Str(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", n.Bool(True)), ("false", n.Bool(False)), ("True", n.Name("True")), ("FALSE", n.Name("FALSE"))],
)
def test_booleans_are_lowercase_words(text, value):
    assert single_value(text) == value


@pytest.mark.parametrize("name", ["relu", "val_loss", "_private", "x3", "leaky_relu", "e5", "x"])
def test_names(name):
    assert single_value(name) == n.Name(name)


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("[1e-3, 3e-3, 1e-2]", (n.Float(1e-3), n.Float(3e-3), n.Float(1e-2))),
        ("[]", ()),
        ("[ 16 ,32 ]", (n.Int(16), n.Int(32))),
        (
            '[0, -1.5, 3x3, "s", relu, true]',
            (n.Int(0), n.Float(-1.5), n.Shape((3, 3)), n.Str("s"), n.Name("relu"), n.Bool(True)),
        ),
    ],
)
def test_lists(text, items):
    assert single_value(text) == n.List(items)


@pytest.mark.parametrize("glued", ["64relu", "1.5.5", "3x3.5", "3x3x", "-3x3", "1e-3x", "2x", "0.5e"])
def test_values_run_together_are_one_bad_number_not_two_values(glued):
    spec, diagnostics = parse(f"k {glued}")
    assert [d.code for d in diagnostics] == ["E109"]
    assert fields(diagnostics[0].span) == expected_span(f"k {glued}", glued)
    assert spec.statements == (n.Broken("k"),)


# --- statements: positionals, options, blocks, `layer` ----------------------------------------


def test_a_statement_is_keyword_positionals_then_options():
    (statement,) = parse_clean('conv2d 16 3x3 relu stride=2 padding=same bias=false target="y" lr=[1, 2]').statements
    assert statement == n.Statement(
        "conv2d",
        (n.Int(16), n.Shape((3, 3)), n.Name("relu")),
        (
            n.Option("stride", n.Int(2)),
            n.Option("padding", n.Name("same")),
            n.Option("bias", n.Bool(False)),
            n.Option("target", n.Str("y")),
            n.Option("lr", n.List((n.Int(1), n.Int(2)))),
        ),
    )
    assert statement.option("padding").value == n.Name("same")
    assert statement.option("missing") is None


def test_blocks_hold_statements_separated_as_at_the_top_level():
    (statement,) = parse_clean("repeat 2 { dense 64 relu; dropout 0.1\n layernorm }").statements
    assert statement.keyword == "repeat"
    assert statement.positionals == (n.Int(2),)
    assert keywords(n.Spec(statement.block)) == ["dense", "dropout", "layernorm"]


def test_blocks_nest():
    text = "repeat 2 {\n  residual {\n    dense 8 relu\n    repeat 3 { dropout 0.1 }\n  }\n}\nbatch 4"
    outer, batch = parse_clean(text).statements
    (residual,) = outer.block
    dense, inner = residual.block
    assert (residual.keyword, dense.keyword, inner.keyword, batch.keyword) == ("residual", "dense", "repeat", "batch")
    assert inner.block == (n.Statement("dropout", (n.Float(0.1),)),)


def test_an_empty_block_differs_from_no_block():
    with_block, without = parse_clean("residual {}\nresidual").statements
    assert with_block.block == ()
    assert without.block is None


@pytest.mark.parametrize("text", ["layer dense 64 relu", "repeat 2 { layer dense 64 relu }"])
def test_the_layer_word_is_optional_and_recorded(text):
    prefixed = parse_clean(text)
    plain = parse_clean(text.replace("layer ", ""))
    dense = (prefixed.statements[0].block or prefixed.statements)[0]
    assert dense.keyword == "dense" and dense.layer_prefix
    assert dense.positionals == (n.Int(64), n.Name("relu"))
    assert prefixed != plain  # `layer` changes meaning: `layer optimizer adam` is not a setting


def test_keywords_are_case_sensitive_names():
    assert keywords(parse_clean("Dense 1; DENSE 1; dense 1")) == ["Dense", "DENSE", "dense"]


# --- spans ----------------------------------------------------------------------------------


SPANNED = 'model m\n  layer dense 64 relu bias=false  # c\nrepeat 2 {\n  dropout 0.5\n}\ndata "é.csv" val=.1'


def test_statement_spans_cover_keyword_to_last_value():
    model, dense, repeat, data = parse(SPANNED)[0].statements
    assert fields(model.span) == expected_span(SPANNED, "model m")
    assert fields(dense.span) == expected_span(SPANNED, "layer dense 64 relu bias=false")
    assert fields(dense.keyword_span) == expected_span(SPANNED, "dense")
    assert fields(repeat.span) == expected_span(SPANNED, "repeat 2 {\n  dropout 0.5\n}")
    assert fields(repeat.block[0].span) == expected_span(SPANNED, "dropout 0.5")
    assert fields(data.span) == expected_span(SPANNED, 'data "é.csv" val=.1')


def test_span_fields_are_one_based_with_exclusive_ends():
    dense = parse(SPANNED)[0].statements[1]
    assert fields(dense.span) == (2, 3, 2, 33, 10, 40)
    repeat = parse(SPANNED)[0].statements[2]
    assert (repeat.span.line, repeat.span.end_line, repeat.span.end_col) == (3, 5, 2)


def test_option_spans_cover_name_equals_value_and_name_alone():
    option = parse(SPANNED)[0].statements[1].options[0]
    assert fields(option.span) == expected_span(SPANNED, "bias=false")
    assert fields(option.name_span) == expected_span(SPANNED, "bias")
    assert fields(option.value.span) == expected_span(SPANNED, "false")


def test_value_spans_count_characters_not_bytes():
    data = parse(SPANNED)[0].statements[3]
    assert fields(data.positionals[0].span) == expected_span(SPANNED, '"é.csv"')
    assert fields(data.options[0].value.span) == expected_span(SPANNED, ".1")


def test_list_and_item_spans():
    text = "optimizer adam lr=[1e-3, 1e-2]"
    value = parse_clean(text).statements[0].options[0].value
    assert fields(value.span) == expected_span(text, "[1e-3, 1e-2]")
    assert [fields(i.span) for i in value.items] == [expected_span(text, "1e-3"), expected_span(text, "1e-2")]


def test_spans_carry_the_path():
    spec, _ = parse("dense 1", "specs/x.dl")
    assert spec.path == "specs/x.dl"
    assert spec.statements[0].span.path == "specs/x.dl"
