"""Syntax errors: each code at the smallest span, and recovery that reports every broken
statement in one pass while the good statements around them stay in the AST."""

from __future__ import annotations

import pytest
from grammar_helpers import expected_span, fields

from dlc.compiler.check import check_file
from dlc.compiler.codes import BY_CODE
from dlc.grammar import nodes as n
from dlc.grammar.parse import MAX_BLOCK_DEPTH, MAX_SYNTAX_ERRORS, decode, parse

# (text, code, the piece of text the error must point at, which occurrence of it)
SYNTAX_ERRORS = [
    ("dense 64 relu @", "E100", "@", 0),
    ("dense\x01 64", "E100", "\x01", 0),
    ("dense 64 \u00a0", "E100", "\u00a0", 0),
    ("dense 64, relu", "E101", ",", 0),
    ("layer 64 relu", "E101", "64", 0),
    ("x [1, [2]]", "E101", "[", 1),
    ("x [a=1]", "E101", "=", 0),
    ("x [1 2]", "E101", "2", 0),
    ("{ dense 1 }", "E101", "{", 0),
    ("optimizer adam lr=", "E102", "lr=", 0),
    ("optimizer adam lr=;batch 2", "E102", "lr=", 0),
    ("input 64\nrepeat 2 { dense 64 relu", "E103", "{", 0),
    ("optimizer adam lr=1e-3 ]", "E104", "]", 0),
    ("dense 1 }", "E104", "}", 0),
    ("input 8x8x1\nconv2d 8 3x3 stride=2 relu", "E105", "relu", 0),
    ("dense 64 bias=true relu 3x3", "E105", "relu 3x3", 0),
    ('model "digits', "E106", '"digits', 0),
    ('data "C:\\data" target="y"', "E107", "\\d", 0),
    ("optimizer adam lr =1e-3", "E108", " =", 0),
    ("optimizer adam lr= 1e-3", "E108", " ", 2),
    ("batch 1__0", "E109", "1__0", 0),
    ("batch 10_", "E109", "10_", 0),
    ("optimizer adam lr=1e400", "E109", "1e400", 0),
    ("dense 64relu", "E109", "64relu", 0),
    ("optimizer adam lr=[1e-3, 1e-2", "E110", "[", 0),
    ("x [1,\n2]", "E110", "[", 0),
]


@pytest.mark.parametrize(("text", "code", "piece", "occurrence"), SYNTAX_ERRORS)
def test_each_syntax_error_has_its_code_at_the_smallest_span(text, code, piece, occurrence):
    _, diagnostics = parse(text)
    assert [d.code for d in diagnostics] == [code]
    assert fields(diagnostics[0].span) == expected_span(text, piece, occurrence)
    assert diagnostics[0].severity == "error"
    assert not diagnostics[0].message[0].isupper() and not diagnostics[0].message.endswith(".")
    assert diagnostics[0].hint


def test_every_syntax_code_is_covered():
    covered = {code for _, code, _, _ in SYNTAX_ERRORS} | {"E111"}  # E111 is in the decode tests
    assert covered == {c for c in BY_CODE if c.startswith("E1")}


def test_codes_examples_of_syntax_errors_fail_and_their_fixes_parse():
    for code in (c for c in BY_CODE.values() if c.code.startswith("E1") and c.bad is not None):
        assert code.code in [d.code for d in parse(code.bad)[1]], code.code
        assert parse(code.good)[1] == [], code.code


# --- recovery -------------------------------------------------------------------------------


THREE_BROKEN = """model m
dense 64 @
batch 32
optimizer adam lr=
epochs 3
dense 64, relu
seed 1
"""


def test_every_broken_statement_is_reported_in_one_pass_and_good_ones_are_kept():
    spec, diagnostics = parse(THREE_BROKEN)
    assert [(d.code, d.span.line) for d in diagnostics] == [("E100", 2), ("E102", 4), ("E101", 6)]
    assert spec.statements == (
        n.Statement("model", (n.Name("m"),)),
        n.Broken("dense"),
        n.Statement("batch", (n.Int(32),)),
        n.Broken("optimizer"),
        n.Statement("epochs", (n.Int(3),)),
        n.Broken("dense"),
        n.Statement("seed", (n.Int(1),)),
    )


def test_recovery_resumes_after_a_semicolon_on_the_same_line():
    spec, diagnostics = parse("dense 1 @; batch 2; optimizer adam lr=; seed 3")
    assert [d.code for d in diagnostics] == ["E100", "E102"]
    assert [type(s).__name__ for s in spec.statements] == ["Broken", "Statement", "Broken", "Statement"]


def test_an_unterminated_string_ends_at_its_line_even_after_a_backslash():
    """A backslash does not carry a string on to the next line (the lexer's strings never do), so
    recovery leaves the next line to itself, as a parse in parts does."""
    spec, diagnostics = parse('model "a\\\nbatch 2')
    assert [d.code for d in diagnostics] == ["E106"]
    assert spec.statements[1:] == (n.Statement("batch", (n.Int(2),)),)


def test_a_broken_statement_is_a_broken_node_spanning_it_with_its_keyword():
    text = "batch 2\nlayer dense 64 @ # note\nseed 1"
    broken = parse(text)[0].statements[1]
    assert broken == n.Broken("dense")
    assert fields(broken.span) == expected_span(text, "layer dense 64 @ # note")


@pytest.mark.parametrize(
    ("text", "keyword"),
    [("optimizer adam lr=", "optimizer"), ("@ x", None), ("= 1", None), ("lr=0.1", "lr"), ("dense 64 relu @", "dense")],
)
def test_broken_keeps_the_first_word_when_it_is_a_name(text, keyword):
    assert parse(text)[0].statements == (n.Broken(keyword),)


def test_an_error_inside_a_block_breaks_only_that_statement():
    spec, diagnostics = parse("residual {\n  dense 1 @\n  dense 2\n}")
    assert [d.code for d in diagnostics] == ["E100"]
    assert spec.statements == (n.Statement("residual", block=(n.Broken("dense"), n.Statement("dense", (n.Int(2),)))),)


def test_a_broken_block_header_is_one_broken_node_and_the_next_statement_parses():
    text = "repeat @ {\n  dense 1\n  dense 2\n}\nbatch 3"
    spec, diagnostics = parse(text)
    assert [d.code for d in diagnostics] == ["E100"]
    assert spec.statements == (n.Broken("repeat"), n.Statement("batch", (n.Int(3),)))
    assert fields(spec.statements[0].span) == expected_span(text, "repeat @ {\n  dense 1\n  dense 2\n}")


def test_a_broken_header_of_an_unclosed_block_does_not_swallow_the_rest():
    spec, diagnostics = parse("repeat @ {\ndense 1\nloss mse")
    assert [d.code for d in diagnostics] == ["E100"]
    assert [getattr(s, "keyword", None) for s in spec.statements] == ["repeat", "dense", "loss"]


def test_an_unclosed_block_becomes_a_broken_header_and_its_statements_stay():
    spec, diagnostics = parse("input 64\nrepeat 2 {\n  dense 64 relu\n  dropout 0.5\nloss mse\n")
    assert [d.code for d in diagnostics] == ["E103"]
    assert spec.statements[1] == n.Broken("repeat")
    assert [s.keyword for s in spec.statements[2:]] == ["dense", "dropout", "loss"]


def test_each_unclosed_block_is_reported_at_its_own_brace():
    text = "repeat 2 {\n residual {\n  dense 4"
    spec, diagnostics = parse(text)
    assert sorted(fields(d.span) for d in diagnostics) == [expected_span(text, "{"), expected_span(text, "{", 1)]
    assert spec.statements == (n.Broken("repeat"), n.Broken("residual"), n.Statement("dense", (n.Int(4),)))


def test_an_unclosed_block_ending_in_a_comment_is_one_error():
    spec, diagnostics = parse("repeat 2 { dense 1 # the end")
    assert [d.code for d in diagnostics] == ["E103"]
    assert spec.statements == (n.Broken("repeat"), n.Statement("dense", (n.Int(1),)))


def test_stray_closing_brackets_are_ignored_and_the_statement_kept():
    spec, diagnostics = parse("dense 1 ]}}\nbatch 2")
    assert [d.code for d in diagnostics] == ["E104"] * 3
    assert spec.statements == (n.Statement("dense", (n.Int(1),)), n.Statement("batch", (n.Int(2),)))


def test_an_option_spaced_after_its_equals_sign_is_reported_but_kept():
    spec, _ = parse("optimizer adam lr= 1e-3")
    assert spec.statements[0].option("lr").value == n.Float(1e-3)


def test_positionals_after_an_option_are_reported_and_left_out():
    spec, _ = parse("conv2d 8 3x3 stride=2 relu")
    assert spec.statements == (n.Statement("conv2d", (n.Int(8), n.Shape((3, 3))), (n.Option("stride", n.Int(2)),)),)


@pytest.mark.parametrize(
    "text",
    [
        "optimizer adam lr=[1e-3,\n  1e-2,\n  1e-1]\nbatch 2",
        "optimizer adam lr=[1e-3, 1e-2 # comment\n]\nbatch 2",
        "optimizer adam lr=[\n1e-3\n, 1e-2]\nbatch 2",
    ],
)
def test_a_list_continued_over_lines_is_one_error_and_one_broken_statement(text):
    spec, diagnostics = parse(text)
    assert [d.code for d in diagnostics] == ["E110"]
    assert spec.statements == (n.Broken("optimizer"), n.Statement("batch", (n.Int(2),)))


def test_an_unclosed_list_at_the_end_of_a_block_leaves_the_block_closed():
    spec, diagnostics = parse("repeat 2 {\n  dense [1,\n}\nbatch 2")
    assert [d.code for d in diagnostics] == ["E110"]
    assert spec.statements == (
        n.Statement("repeat", (n.Int(2),), block=(n.Broken("dense"),)),
        n.Statement("batch", (n.Int(2),)),
    )


def test_errors_in_values_break_their_statement():
    assert parse("batch 1__0\nseed 1")[0].statements == (n.Broken("batch"), n.Statement("seed", (n.Int(1),)))


def test_a_bad_number_inside_a_block_breaks_only_its_own_statement():
    spec, _ = parse("repeat 2 {\n  dense 1__0\n  dense 2\n}")
    assert spec.statements == (
        n.Statement("repeat", (n.Int(2),), block=(n.Broken("dense"), n.Statement("dense", (n.Int(2),)))),
    )


def nested(depth: int) -> str:
    return "repeat 1 {\n" * depth + "dense 1\n" + "}\n" * depth


def test_blocks_nest_up_to_the_limit():
    spec, diagnostics = parse(nested(MAX_BLOCK_DEPTH))
    assert diagnostics == []
    (innermost,) = spec.statements
    for _ in range(MAX_BLOCK_DEPTH - 1):
        (innermost,) = innermost.block
    assert innermost.block == (n.Statement("dense", (n.Int(1),)),)


@pytest.mark.parametrize("depth", [MAX_BLOCK_DEPTH + 1, 5000])
def test_blocks_nested_too_deep_are_one_error_at_the_first_brace_too_many(depth):
    text = nested(depth)
    _, diagnostics = parse(text)
    assert [(d.code, d.span.line) for d in diagnostics] == [("E101", MAX_BLOCK_DEPTH + 1)]
    assert fields(diagnostics[0].span) == expected_span(text, "{", MAX_BLOCK_DEPTH)


# --- characters, bytes, limits --------------------------------------------------------------


def test_a_nul_in_the_input_is_an_error_not_a_recovery_placeholder():
    spec, diagnostics = parse("a 1\x00\nb 2")
    assert [(d.code, d.span.col) for d in diagnostics] == [("E100", 4)]
    assert spec.statements == (n.Statement("a", (n.Int(1),)), n.Statement("b", (n.Int(2),)))


@pytest.mark.parametrize("blank", ["\t", "\f", "\r"])
def test_tab_form_feed_and_carriage_return_are_blanks(blank):
    assert parse(f"dense{blank}64{blank}relu")[0].statements == (n.Statement("dense", (n.Int(64), n.Name("relu"))),)


def test_decode_reports_the_first_bad_byte_as_e111_at_its_line_and_column():
    text, diagnostics = decode("model m\nx é ".encode() + b"\xff", "bad.dl")
    assert text == ""
    (diagnostic,) = diagnostics
    assert diagnostic.code == "E111"
    assert (diagnostic.span.path, diagnostic.span.line, diagnostic.span.col) == ("bad.dl", 2, 5)
    assert "0xff" in diagnostic.message


def test_decode_reports_a_truncated_character_at_the_end():
    (diagnostic,) = decode("model é".encode()[:-1], "cut.dl")[1]
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.col) == ("E111", 1, 7)


def test_decode_strips_a_byte_order_mark():
    assert decode(b"\xef\xbb\xbfmodel m\n", "bom.dl") == ("model m\n", [])


def test_decode_columns_do_not_count_a_byte_order_mark():
    (diagnostic,) = decode(b"\xef\xbb\xbfab\xff", "bom.dl")[1]
    assert diagnostic.span.col == 3


def test_check_file_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.dl"
    path.write_bytes("model café".encode("latin-1"))
    program, diagnostics, _ = check_file(path)
    assert program is None
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics] == [("E111", 1, 10)]


@pytest.mark.parametrize("broken_line", ["x @", "\x01"])
def test_syntax_errors_stop_at_the_cap_with_one_last_error_saying_so(broken_line):
    spec, diagnostics = parse("\n".join([broken_line] * (MAX_SYNTAX_ERRORS + 20)))
    assert len(diagnostics) == MAX_SYNTAX_ERRORS + 1
    assert diagnostics[-1].code == "E101"
    assert "too many syntax errors" in diagnostics[-1].message
    assert diagnostics[-1].span.start <= len(spec.source)


def test_a_statement_right_after_a_closed_block_breaks_only_that_statement():
    """`repeat 2 {} dense 4`: the `}` does not end the statement, the missing separator does; the
    lines after it still parse, and no placeholder of recovery ever reaches a message."""
    spec, errors = parse("repeat 2 {}  dense 4\nmodel a\ndense 2\n")
    assert [(type(s).__name__, s.keyword) for s in spec.statements] == [
        ("Broken", "repeat"), ("Statement", "model"), ("Statement", "dense")]
    assert [(e.code, e.span.start, e.message) for e in errors] == [("E101", 13, "unexpected `dense`")]
