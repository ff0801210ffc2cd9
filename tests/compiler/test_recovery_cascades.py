"""One syntax error, one diagnostic: what the parser's recovery hands the checker must not make it
blame statements that are fine (the case files hold the other recoveries)."""

from __future__ import annotations

from dlc.compiler.check import check_text

END = "dense 10 softmax\nloss categorical_crossentropy\noptimizer adam"


def found(text: str) -> list[tuple[int, str]]:
    return [(d.span.line, d.code) for d in check_text(text, "spec.dl")[1]]


def test_an_unterminated_string_does_not_swallow_the_next_line() -> None:
    assert found(f'model "digits\ninput 64\n{END}') == [(1, "E106")]


def test_a_block_left_open_does_not_take_the_settings_after_it() -> None:
    assert found(f"input 64\nrepeat 2 {{ dense 64 relu\n{END}") == [(2, "E103")]


def test_a_missing_value_before_the_next_option_is_reported_as_missing() -> None:
    assert found(f"input 64\ndense 64 init= bias=false\n{END}") == [(2, "E102")]
