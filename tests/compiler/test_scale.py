"""A long spec checks in one pass, with every layer counted: a sanity check that checking stays
linear in the number of statements (no timing is asserted; a quadratic checker would show here
as a slow test)."""

from __future__ import annotations

from dlc.compiler.check import check_text
from dlc.compiler.diagnostics import MAX_DIAGNOSTICS


def test_two_thousand_statements_check_and_count_every_parameter() -> None:
    blocks = 1_000
    lines = ["input 64"] + ["dense 64 relu\ndropout 0.1"] * blocks + ["loss mse", "optimizer adam"]
    text = "\n".join(lines)
    program, diagnostics = check_text(text, "long.dl")
    assert diagnostics == []
    assert len(text.splitlines()) > 2_000
    assert len(program.layers) == 2 * blocks
    assert program.params == blocks * (64 * 64 + 64)


def test_a_long_spec_with_an_error_in_every_statement_reports_the_first_ones_then_stops() -> None:
    text = "input 64\n" + "dense 0\n" * 2_000
    _, diagnostics = check_text(text, "broken.dl")
    assert [d.span.line for d in diagnostics if d.code == "E301"] == list(range(2, 2 + MAX_DIAGNOSTICS))
    assert diagnostics[-1].message == f"too many errors; stopped after {MAX_DIAGNOSTICS}"
