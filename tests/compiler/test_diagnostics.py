"""Diagnostics rendered for people (text) and for tools (JSON), as the contract describes them."""

from __future__ import annotations

import json
import re

from dlc.compiler.check import check_text
from dlc.compiler.diagnostics import error, render_json, render_text, summary_line
from dlc.grammar.nodes import Span

CONTRACT_KEYS = {"path", "line", "col", "end_line", "end_col", "severity", "code", "message", "hint"}
SPEC = "input 64\ndense 64 rleu\ndense 10 softmax\nloss categorical_crossentropy\n"  # no optimizer: W102


def diagnostics_of(text: str, path: str = "spec.dl"):
    return check_text(text, path)[1]


def test_json_is_a_list_of_objects_with_the_contracts_fields() -> None:
    found = json.loads(render_json(diagnostics_of(SPEC)))
    assert all(CONTRACT_KEYS <= item.keys() for item in found)
    error = next(item for item in found if item["severity"] == "error")
    assert {k: error[k] for k in CONTRACT_KEYS} == {
        "path": "spec.dl", "line": 2, "col": 10, "end_line": 2, "end_col": 14,  # `rleu`; end_col is exclusive
        "severity": "error", "code": "E203", "message": "unknown activation `rleu`",
        "hint": "did you mean `relu`?",
    }
    assert [(item["severity"], item["code"]) for item in found] == [("error", "E203"), ("warning", "W102")]


def test_json_of_no_diagnostics_is_an_empty_list() -> None:
    assert json.loads(render_json([])) == []


def test_json_carries_secondary_labels() -> None:
    (found,) = json.loads(render_json(diagnostics_of("input 4\ninput 8\nloss mse\noptimizer adam")))
    assert found["labels"] == [{"path": "spec.dl", "line": 1, "col": 1, "end_line": 1, "end_col": 8,
                                "message": "first set here"}]


def test_text_has_header_source_line_caret_and_hint() -> None:
    text = render_text([d for d in diagnostics_of(SPEC) if d.is_error], {"spec.dl": SPEC})
    assert text.splitlines() == [
        "spec.dl:2:10: error[E203]: unknown activation `rleu`",
        " 2 | dense 64 rleu",
        "   |          ^^^^",
        "hint: did you mean `relu`?",
    ]


def test_text_notes_the_first_of_two_settings_under_the_second() -> None:
    source = "batch 8\ninput 4\nbatch 16\nloss mse\noptimizer adam"
    assert render_text(diagnostics_of(source), {"spec.dl": source}).splitlines() == [
        "spec.dl:3:1: error[E304]: `batch` is set twice",
        " 3 | batch 16",
        "   | ^^^^^^^^",
        "spec.dl:1:1: note: first set here",
        " 1 | batch 8",
        "   | ^^^^^^^",
        "hint: keep one `batch` statement",
    ]


def test_a_diagnostic_about_the_whole_file_shows_no_source_line_and_comes_last() -> None:
    source = "input 4\ndense 1 rleu\nloss mse"
    lines = render_text(diagnostics_of(source), {"spec.dl": source}).splitlines()
    assert lines[0].startswith("spec.dl:2:")
    assert lines[-2:] == ["spec.dl:1:1: warning[W102]: no `optimizer`: `dlc run` and `fit` need one",
                          "hint: add, for example, `optimizer adam lr=1e-3`"]


def test_caret_stays_under_the_span_after_a_tab() -> None:
    source = "input 4\n\tdense\t4 rleu\nloss mse\noptimizer adam"
    snippet = render_text(diagnostics_of(source), {"spec.dl": source}).splitlines()[1:3]
    source_line, caret_line = snippet
    start = caret_line.index("^")
    assert source_line[start:start + len("rleu")] == "rleu"
    assert caret_line.count("^") == len("rleu")


def test_a_span_over_several_lines_is_underlined_to_the_end_of_its_first() -> None:
    source = "input 4\nresidual {\n  dense 8\n}\n"
    span = Span("spec.dl", 2, 1, 4, 2, 8, source.index("}") + 1)
    assert render_text([error("E403", span, "message")], {"spec.dl": source}).splitlines()[1:] == [
        " 2 | residual {",
        "   | ^^^^^^^^^^",
    ]


def test_colour_only_when_asked() -> None:
    found = diagnostics_of(SPEC)
    assert "\033[" not in render_text(found, {"spec.dl": SPEC})
    coloured = render_text(found, {"spec.dl": SPEC}, color=True)
    assert "\033[" in coloured
    assert _strip_ansi(coloured) == render_text(found, {"spec.dl": SPEC})


def _strip_ansi(text: str) -> str:
    return re.sub(r"\033\[[0-9;]*m", "", text)


def test_summary_line_counts_errors_and_warnings() -> None:
    assert summary_line(diagnostics_of(SPEC)) == "1 error, 1 warning"
    assert summary_line(diagnostics_of("input 4\ndense 0\ndense 0")) == "2 errors, 2 warnings"
