"""Shared checks for the grammar tests: spans computed independently of the parser."""

from __future__ import annotations

from dlc.grammar import nodes as n
from dlc.grammar.parse import parse


def parse_clean(text: str) -> n.Spec:
    """Parse text that must have no syntax error."""
    spec, diagnostics = parse(text)
    assert diagnostics == [], [d.message for d in diagnostics]
    return spec


def expected_span(text: str, piece: str, occurrence: int = 0) -> tuple[int, int, int, int, int, int]:
    """(line, col, end_line, end_col, start, end) of the `occurrence`-th `piece` in `text`, end exclusive."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    end = start + len(piece)

    def position(offset: int) -> tuple[int, int]:
        before = text[:offset].split("\n")
        return len(before), len(before[-1]) + 1

    return (*position(start), *position(end), start, end)


def fields(span: n.Span) -> tuple[int, int, int, int, int, int]:
    return span.line, span.col, span.end_line, span.end_col, span.start, span.end
