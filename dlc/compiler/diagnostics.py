"""Diagnostics are data: every stage returns them, the API raises them together, the CLI renders them.

The text form is the contract's: `PATH:LINE:COL: severity[CODE]: message`, the source
line, a caret under the span, then `hint: ...`. Secondary labels (a setting's first
occurrence, say) follow as `note:` with their own source line. A diagnostic about the whole
file (`no loss`) has no source line to show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dlc.grammar.nodes import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Label:
    """A second place that explains the first (`first set here`)."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    span: Span
    message: str
    hint: str | None = None
    labels: tuple[Label, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict:
        return {
            "path": self.span.path,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "labels": [
                {"path": lb.span.path, "line": lb.span.line, "col": lb.span.col,
                 "end_line": lb.span.end_line, "end_col": lb.span.end_col, "message": lb.message}
                for lb in self.labels
            ],
        }


def file_span(path: str) -> Span:
    """Where a diagnostic about the whole file points: empty, at line 1, column 1."""
    return Span(path, 1, 1, 1, 1, 0, 0)


def is_whole_file(span: Span) -> bool:
    return span.start == span.end == 0


def error(code: str, span: Span, message: str, hint: str | None = None, labels: tuple[Label, ...] = ()) -> Diagnostic:
    """An error worded elsewhere: by a layer's shape rule, which words its own (`ShapeError`). The
    stages word theirs with the message table (`messages.py`)."""
    return Diagnostic(code, "error", span, message, hint, labels)


# Diagnostics reported for one file, at most: past them, the parser and the checker stop, so that a
# megabyte of mistakes is checked in the time of its first few and prints a screenful, not megabytes.
# The last one then says that checking stopped (`messages.TOO_MANY_ERRORS`), in the text and in JSON alike.
MAX_DIAGNOSTICS = 50


def sort_key(d: Diagnostic) -> tuple:
    """Source order, file by file; what is about a whole file (`no loss`) after what points into it."""
    return (d.span.path, is_whole_file(d.span), d.span.start, d.code)


_STYLE = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m", "hint": "\033[1;32m",
          "bold": "\033[1m", "reset": "\033[0m"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_STYLE[style]}{text}{_STYLE['reset']}" if color else text


# A source line longer than this is shown as a window around the span, so that a megabyte-long line
# prints as one screen line, and printing many errors on it costs no more than printing them elsewhere.
SHOWN_WIDTH = 120

# Characters that would move the cursor, ring the bell, switch colours or reorder the text of a terminal
# (the bidirectional controls of "Trojan Source" among them): shown as U+FFFD, one character for one,
# so that nothing in a spec or a data file can change what the user reads, and columns stay true.
_UNPRINTABLE = dict.fromkeys([*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029,
                              *range(0x202A, 0x202F), *range(0x2066, 0x206A)], "\ufffd")


# Longer messages and hints (one that quotes a megabyte-long name) lose their middle when printed as text.
SHOWN_MESSAGE = 400


def printable(text: str, limit: int | None = None) -> str:
    """`text` safe to print on one line of a terminal: control characters replaced, tabs kept, and
    beyond `limit` characters, the middle left out."""
    if limit is not None and len(text) > limit:
        text = f"{text[:limit - 40]} ... {text[-35:]}"
    return text.translate(_UNPRINTABLE)


def _snippet(span: Span, lines: list[str] | None, style: str, color: bool) -> list[str]:
    """The span's first source line with a caret under the span (to the line's end if it runs on).
    `lines` is the source split at line breaks, as spans count lines."""
    if lines is None or is_whole_file(span) or not 1 <= span.line <= len(lines):
        return []
    raw = lines[span.line - 1].removesuffix("\r")
    first = span.col - 1
    last = max(span.end_col - 1 if span.end_line == span.line else len(raw), first)
    lo = 0 if len(raw) <= SHOWN_WIDTH else max(0, min(first - SHOWN_WIDTH // 4, len(raw) - SHOWN_WIDTH))
    hi = lo + SHOWN_WIDTH
    shown = printable(raw[lo:hi])
    before, after = ("..." if lo else ""), ("..." if hi < len(raw) else "")
    # Columns count characters of the raw line; re-measure after tab expansion.
    start = len(before) + len(shown[: first - lo].expandtabs(4))
    end = len(before) + len(shown[: min(last, hi) - lo].expandtabs(4))
    gutter = str(span.line)
    pad = " " * len(gutter)
    caret = _paint("^" * max(end - start, 1), style, color)
    return [f" {gutter} | {before}{shown.expandtabs(4)}{after}", f" {pad} | {' ' * start}{caret}"]


def render_text(diagnostics: Iterable[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    """All diagnostics as the text a user reads, in source order."""
    split: dict[str, list[str]] = {}  # each source's lines, split once however many errors it has

    def lines_of(path: str) -> list[str] | None:
        if path not in split and path in sources:
            split[path] = sources[path].split("\n")
        return split.get(path)

    out: list[str] = []
    for d in diagnostics:
        s = d.span
        head = printable(f"{s.path}:{s.line}:{s.col}: ")
        out.append(_paint(head, "bold", color) + _paint(f"{d.severity}[{d.code}]", d.severity, color)
                   + _paint(f": {printable(d.message, SHOWN_MESSAGE)}", "bold", color))
        out.extend(_snippet(s, lines_of(s.path), d.severity, color))
        for label in d.labels:
            ls = label.span
            out.append(printable(f"{ls.path}:{ls.line}:{ls.col}: ") + _paint("note", "note", color)
                       + f": {printable(label.message, SHOWN_MESSAGE)}")
            out.extend(_snippet(ls, lines_of(ls.path), "note", color))
        if d.hint:
            out.append(_paint("hint", "hint", color) + f": {printable(d.hint, SHOWN_MESSAGE)}")
    return "\n".join(out) + ("\n" if out else "")


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2)


def summary_line(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts)
