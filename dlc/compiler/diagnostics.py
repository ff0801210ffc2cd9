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


def _is_whole_file(span: Span) -> bool:
    return span.start == span.end == 0


def error(code: str, span: Span, message: str, hint: str | None = None, labels: tuple[Label, ...] = ()) -> Diagnostic:
    return Diagnostic(code, "error", span, message, hint, labels)


def warning(code: str, span: Span, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, "warning", span, message, hint)


def sort_key(d: Diagnostic) -> tuple:
    """Source order, file by file; what is about a whole file (`no loss`) after what points into it."""
    return (d.span.path, _is_whole_file(d.span), d.span.start, d.code)


_STYLE = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m", "hint": "\033[1;32m",
          "bold": "\033[1m", "reset": "\033[0m"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_STYLE[style]}{text}{_STYLE['reset']}" if color else text


def _snippet(span: Span, source: str | None, style: str, color: bool) -> list[str]:
    """The span's first source line with a caret under the span (to the line's end if it runs on)."""
    if source is None or _is_whole_file(span):
        return []
    lines = source.splitlines() or [""]
    if not 1 <= span.line <= len(lines):
        # A span at the very end of a file that ends in a newline: show an empty line.
        if span.line == len(lines) + 1:
            lines = lines + [""]
        else:
            return []
    raw = lines[span.line - 1]
    text = raw.expandtabs(4)
    # Columns count characters of the raw line; re-measure after tab expansion.
    start = len(raw[: span.col - 1].expandtabs(4))
    end_col = span.end_col if span.end_line == span.line else len(raw) + 1
    end = len(raw[: max(end_col - 1, span.col - 1)].expandtabs(4))
    width = max(end - start, 1)
    gutter = str(span.line)
    pad = " " * len(gutter)
    caret = _paint("^" * width, style, color)
    return [f" {gutter} | {text}", f" {pad} | {' ' * start}{caret}"]


def render_text(diagnostics: Iterable[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    """All diagnostics as the text a user reads, in source order."""
    out: list[str] = []
    for d in diagnostics:
        s = d.span
        head = f"{s.path}:{s.line}:{s.col}: "
        out.append(_paint(head, "bold", color) + _paint(f"{d.severity}[{d.code}]", d.severity, color)
                   + _paint(f": {d.message}", "bold", color))
        out.extend(_snippet(s, sources.get(s.path), d.severity, color))
        for label in d.labels:
            ls = label.span
            out.append(f"{ls.path}:{ls.line}:{ls.col}: " + _paint("note", "note", color) + f": {label.message}")
            out.extend(_snippet(ls, sources.get(ls.path), "note", color))
        if d.hint:
            out.append(_paint("hint", "hint", color) + f": {d.hint}")
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
