"""Printing then parsing any registry-shaped AST gives the same AST back, with no diagnostics."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import specs, values

from dlc.grammar import nodes as n
from dlc.grammar.parse import parse
from dlc.grammar.printer import print_spec, print_value


@settings(max_examples=300, deadline=None)
@given(specs())
def test_parse_of_print_is_the_identity(spec):
    text = print_spec(spec)
    parsed, diagnostics = parse(text)
    assert diagnostics == []
    assert parsed == spec
    assert print_spec(parsed) == text


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_value_prints_as_one_value(value):
    parsed, diagnostics = parse(f"k {print_value(value)}")
    assert diagnostics == []
    assert parsed.statements == (n.Statement("k", (value,)),)
