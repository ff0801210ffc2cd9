"""The front end never raises on any input: text or bytes, random or a mutated real spec, it
answers with diagnostics whose spans lie inside the text and agree with their offsets."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import SHIPPED_SPECS, mutated, texts

from dlc.compiler.check import check_file, check_text
from dlc.compiler.codes import BY_CODE
from dlc.compiler.diagnostics import Diagnostic
from dlc.grammar import nodes as n

SHIPPED_TEXTS = tuple(p.read_text(encoding="utf-8") for p in SHIPPED_SPECS)


def assert_span_agrees(text: str, span: n.Span) -> None:
    """The span lies inside `text`, and its lines and columns name the same places as its offsets."""
    assert 0 <= span.start <= span.end <= len(text)
    for offset, line, col in ((span.start, span.line, span.col), (span.end, span.end_line, span.end_col)):
        before = text[:offset].split("\n")
        assert (line, col) == (len(before), len(before[-1]) + 1)


def assert_answers(text: str, program, diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        assert d.code in BY_CODE
        assert d.severity in ("error", "warning")
        assert_span_agrees(text, d.span)
        for label in d.labels:
            assert_span_agrees(text, label.span)
    assert (program is None) == any(d.is_error for d in diagnostics)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_any_text_gets_diagnostics_never_an_exception(text):
    assert_answers(text, *check_text(text))


@settings(max_examples=200, deadline=None)
@given(mutated(SHIPPED_TEXTS))
def test_mutated_shipped_specs_get_diagnostics_never_an_exception(text):
    assert_answers(text, *check_text(text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.builds(lambda t, b: t.encode("utf-8", "surrogatepass") + b, texts, st.binary(max_size=3)))
def test_any_bytes_through_check_file_get_diagnostics_never_an_exception(tmp_path, data):
    path = tmp_path / "spec.dl"
    path.write_bytes(data)
    program, diagnostics, text = check_file(path)
    assert_answers(text, program, diagnostics)
    if any(d.code == "E111" for d in diagnostics):
        assert [d.code for d in diagnostics] == ["E111"]
