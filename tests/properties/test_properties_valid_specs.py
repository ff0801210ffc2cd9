"""Specs built from registry facts, every value inside its range, check clean, and the IR
counts the parameters a textbook formula counts."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import valid_specs

from dlc.compiler.check import check_text


@settings(max_examples=150, deadline=None)
@given(valid_specs())
def test_registry_built_valid_specs_check_clean_with_the_right_parameter_count(spec):
    program, diagnostics = check_text(spec.text)
    assert [(d.code, d.span.line, d.message) for d in diagnostics if d.is_error] == [], spec.text
    assert program.params == spec.params
    assert program.output_shape == (spec.classes,)
