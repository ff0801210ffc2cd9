"""A valid spec with a list put in place of any one of its values checks without an exception: an
answer with diagnostics, or a sweep of one member per element (the element that was there first
among them, so a clean answer has at least that member)."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import swept_specs
from test_properties_robustness import assert_answers

from dlc.compiler.check import check_text


@settings(max_examples=150, deadline=None)
@given(swept_specs())
def test_a_list_in_place_of_any_value_checks_as_a_sweep(text):
    program, diagnostics = check_text(text)
    assert_answers(text, program, diagnostics)
    if program is not None:
        sweep = program.sweep
        (axis,) = sweep.axes
        assert len(sweep.members) == len(axis.values) == len(sweep.labels)
        assert len(set(sweep.labels)) == len(sweep.labels)
        assert sorted(k for group in sweep.groups for k in group) == list(range(len(sweep.members)))
