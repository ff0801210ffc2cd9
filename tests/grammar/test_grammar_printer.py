"""The printer: canonical text that parses back to the same AST."""

from __future__ import annotations

from pathlib import Path

import pytest
from grammar_helpers import parse_clean

from dlc.grammar import nodes as n
from dlc.grammar.parse import parse
from dlc.grammar.printer import print_spec, print_statement, print_value

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
CONTRACT = REPO.parent / "shared" / "contract"


def identity_lines() -> list[str]:
    lines = (TESTS / "identity.dl").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def shipped_specs() -> list[Path]:
    return sorted((REPO / "specs").glob("*.dl")) + sorted(CONTRACT.glob("*/*.dl"))


@pytest.mark.parametrize("line", identity_lines())
def test_canonical_statements_print_back_unchanged(line):
    assert print_spec(parse_clean(line)) == line + "\n"


def test_the_identity_file_is_canonical_as_a_whole():
    lines = identity_lines()
    assert len(lines) >= 50  # a wide variety, not a token file
    assert print_spec(parse_clean("\n".join(lines))) == "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("path", shipped_specs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_spec_survives_print_then_parse(path):
    spec, diagnostics = parse(path.read_text(encoding="utf-8"), str(path))
    if diagnostics:  # contract cases of syntax errors have no canonical form
        assert path.parent.name == "invalid"
        return
    printed = print_spec(spec)
    assert parse_clean(printed) == spec
    assert print_spec(parse_clean(printed)) == printed


def test_shipped_specs_are_found():
    assert {p.parent.name for p in shipped_specs()} >= {"specs", "valid", "invalid"}


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("dense   64\trelu  # comment", "dense 64 relu"),
        ("optimizer adam lr=1e-3", "optimizer adam lr=0.001"),
        ("x .5 2. 3E-4 +5 60_000 1_000.5", "x 0.5 2.0 0.0003 5 60000 1000.5"),
        ("x [ 1 ,2 ]", "x [1, 2]"),
        ("a; b;; c", "a\nb\nc"),
        ("repeat 2 { dense 1; dropout 0.5 }", "repeat 2 {\n  dense 1\n  dropout 0.5\n}"),
        ("repeat 2 { residual { layer dense 4 } }", "repeat 2 {\n  residual {\n    layer dense 4\n  }\n}"),
    ],
)
def test_layout_and_number_spelling_become_canonical(text, canonical):
    assert print_spec(parse_clean(text)) == canonical + "\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (n.Str('a"b\\c'), r'"a\"b\\c"'),
        (n.Bool(True), "true"),
        (n.Float(1e-3), "0.001"),
        (n.Int(-7), "-7"),
        (n.Shape((2, 3)), "2x3"),
        (n.List(()), "[]"),
    ],
)
def test_values_print_in_source_form(value, text):
    assert print_value(value) == text


def test_a_block_statement_prints_indented_at_its_depth():
    inner = n.Statement("dense", (n.Int(4),))
    assert print_statement(n.Statement("residual", block=(inner,)), indent=1) == "  residual {\n    dense 4\n  }"


def test_a_spec_with_syntax_errors_has_no_canonical_form():
    spec, _ = parse("dense 64 @")
    with pytest.raises(ValueError, match="syntax errors"):
        print_spec(spec)
