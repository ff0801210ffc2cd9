"""Fuzzing in the suite, a few seconds of it: specs from the grammar and mutated shipped specs
through the front end, the API and `dlc check` (see `fuzzing.py` for what is fed and what is
promised). `scripts/fuzz.py` runs the same for minutes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzing import SHIPPED, answer, grammar_specs, shipped_mutations
from hypothesis import given, settings


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_every_shipped_spec_is_fed():
    assert len(SHIPPED) > 20 and {p.parent.name for p in SHIPPED} >= {"specs", "optimizers", "valid", "invalid"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_specs_as_they_are(path, scratch):
    answer(path.read_bytes(), path.parent, scratch)


@settings(max_examples=400, deadline=None, database=None)
@given(case=shipped_mutations())
def test_mutated_shipped_specs_never_crash(case, scratch):
    answer(*case, scratch)


@settings(max_examples=200, deadline=None, database=None)
@given(case=grammar_specs())
def test_specs_from_the_grammar_never_crash(case, scratch):
    answer(*case, scratch)
