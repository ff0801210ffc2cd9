"""Text to AST, reporting every syntax error in one pass: the entry points and the loop of passes.

Recovery: lark's LALR parser stops at the first error. We report it, replace the
broken statement in a working copy of the text by a placeholder of the same length
(so every offset, line and column stays true), and parse again (`recovery.py`). Each pass
removes at least one character of broken text, so the loop ends; the number of errors is
capped (MAX_DIAGNOSTICS) for pathological input. `builder.py` turns each tree into the AST.

The text is parsed a part at a time, each part ending at a line break between top-level
statements: a pass after an error parses its part again, not the whole text, and a caller
that has seen enough errors in the first parts (`parse_growing`) need not parse the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from dlc.compiler import messages as m
from dlc.compiler.diagnostics import MAX_DIAGNOSTICS, Diagnostic
from dlc.grammar import nodes as n
from dlc.grammar.builder import Builder
from dlc.grammar.recovery import PLACEHOLDER, Edit, recover
from dlc.grammar.scanning import Lines, part_end, statement_end

MAX_SYNTAX_ERRORS = MAX_DIAGNOSTICS  # one cap for every diagnostic of a file, syntax errors among them
# A part of the text holds at least this many characters, unless it is the last.
PART_CHARS = 4_096
# The most tokens a statement (or a block's header) may hold: no statement takes more than a few dozen,
# and a megabyte of values on one line would cost seconds to parse for nothing.
MAX_STATEMENT_TOKENS = 1_000
# Deeper blocks are refused: every later stage walks blocks recursively, and no network needs them.
MAX_BLOCK_DEPTH = 32

_parser: Lark | None = None


def _lark() -> Lark:
    global _parser
    if _parser is None:
        grammar = (Path(__file__).parent / "dl.lark").read_text(encoding="utf-8")
        _parser = Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    return _parser


def decode(data: bytes, path: str) -> tuple[str, list[Diagnostic]]:
    """Bytes of a spec file to text; a file that is not UTF-8 is one error at its first bad byte."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), []
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8").removeprefix("\ufeff")  # columns as in the text we would return
        at = Lines(path, good + " ").span(len(good), len(good) + 1)
        return "", [m.NOT_UTF8.at(at, byte=data[e.start], offset=e.start)]


def parse(text: str, path: str = "<spec>") -> tuple[n.Spec, list[Diagnostic]]:
    """Parse a whole spec. Returns the AST (broken statements as `Broken`) and every syntax error."""
    spec, diagnostics, _ = _Parse(text, path).upto(len(text))
    return spec, diagnostics


def parse_growing(text: str, path: str = "<spec>") -> Iterator[tuple[n.Spec, list[Diagnostic], bool]]:
    """The spec parsed part by part: first about PART_CHARS characters, then four times as many at
    each step, and `True` once the spec is whole. A checker that finds more errors than it shows in a
    first part stops there, so a megabyte of mistakes costs no more than its first few kilobytes."""
    parsing, size = _Parse(text, path), PART_CHARS
    while True:
        spec, diagnostics, whole = parsing.upto(size)
        yield spec, diagnostics, whole
        if whole:
            return
        size *= 4


class _TooMany(Exception):
    """The file has more syntax errors than are shown."""


_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f]")  # below space, but for tab, line feed, form feed, CR


class _Parse:
    """A spec's parse so far: the statements of `text[:done]` and the syntax errors found in it."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.lines = Lines(path, text)
        self.diagnostics: list[Diagnostic] = []
        self.working = list(text)
        self.builder = Builder(text, self.lines, self.report)
        self.statements: list[n.Node] = []
        self.done = 0
        self.stopped = False
        try:
            for found in _CONTROL.finditer(text):
                i, c = found.start(), found.group()
                self.working[i] = " "
                self.report(m.CONTROL_CHARACTER.at(self.lines.span(i, i + 1), char=m.code_point(c)))
        except _TooMany:
            self.stop()

    def report(self, d: Diagnostic) -> None:
        if len(self.diagnostics) >= MAX_SYNTAX_ERRORS:
            raise _TooMany
        self.diagnostics.append(d)

    def stop(self) -> None:
        self.stopped = True
        end = len(self.text)
        self.diagnostics.append(m.TOO_MANY_SYNTAX_ERRORS.at(self.lines.span(end, end), limit=MAX_SYNTAX_ERRORS))

    def upto(self, size: int) -> tuple[n.Spec, list[Diagnostic], bool]:
        """The parse of the parts that start before `size`: the spec, its syntax errors, whether it is whole.
        A file with too many syntax errors is an empty spec: what the parser made of it is no spec."""
        try:
            while not self.stopped and self.done < min(size, len(self.text)):
                end = part_end(self.text, self.done, PART_CHARS)
                self.statements.extend(self.part(self.done, end))
                self.done = end
        except _TooMany:
            self.stop()
        if self.stopped:
            return n.Spec((), self.path, self.text), list(self.diagnostics), True
        return n.Spec(tuple(self.statements), self.path, self.text), list(self.diagnostics), \
            self.done >= len(self.text)

    def part(self, start: int, end: int) -> list[n.Node]:
        """The statements of `text[start:end]`. Lark reads the text before it as one placeholder, so that
        its offsets are the text's."""
        before = PLACEHOLDER * (start - 1) + "\n" if start else ""
        while True:
            current = before + "".join(self.working[start:end])
            try:
                tree = _tree(current, self.lines)
            except UnexpectedInput as e:
                found, edits = recover(e, current, self.text, self.lines, start)
            except _Refused as e:
                found = [e.diagnostic]
                edits = [(e.start, statement_end(current, e.start, e.whole_block), PLACEHOLDER)]
            else:  # without the placeholder for the text before the part
                return self.builder.statements([child for child in tree.children
                                                if child.data != "broken" or child.children[0].start_pos >= start])
            for d in found:
                self.report(d)
            if not self.edit(edits, end):  # cannot happen for well-formed recovery; never loop forever
                return []

    def edit(self, edits: list[Edit], until: int) -> bool:
        """Apply recovery's edits to the working copy, up to `until`, the end of the part; whether any
        changed it."""
        changed = False
        for start, end, replacement in edits:
            # Line breaks inside a broken statement are blanked too, so that it stays one `Broken`
            # node; positions still come from `text`, so lines and columns stay true.
            for i in range(start, min(end, until)):
                if self.working[i] != PLACEHOLDER:
                    self.working[i] = replacement
                    changed = True
        return changed


class _Refused(Exception):
    """A statement, from offset `start`, that the parser refuses before reading it to its end.
    `whole_block`: what it refuses is its block, which is skipped even if never closed."""

    def __init__(self, start: int, diagnostic: Diagnostic, whole_block: bool = False):
        super().__init__(diagnostic.message)
        self.start, self.diagnostic, self.whole_block = start, diagnostic, whole_block


_STATEMENT_ENDS = frozenset({"_NL", "SEMICOLON", "LBRACE", "RBRACE"})


def _tree(current: str, lines: Lines) -> Tree:
    """lark's parse of `current`. It stops at a statement of more than MAX_STATEMENT_TOKENS tokens and
    at a block nested more than MAX_BLOCK_DEPTH deep: a megabyte of either costs seconds to parse."""
    parser = _lark().parse_interactive(current)
    first: Token | None = None
    count = depth = 0
    for token in parser.iter_parse():  # each token is seen before lark reads it
        if token.type == "LBRACE":
            depth += 1
            if depth > MAX_BLOCK_DEPTH:
                raise _Refused(first.start_pos if first else token.start_pos,
                               m.NESTED_TOO_DEEP.at(lines.span(token.start_pos, token.end_pos), depth=MAX_BLOCK_DEPTH),
                               whole_block=True)
        elif token.type == "RBRACE":
            depth = max(depth - 1, 0)
        if token.type in _STATEMENT_ENDS:
            first, count = None, 0
            continue
        first, count = first or token, count + 1
        if count > MAX_STATEMENT_TOKENS:
            raise _Refused(first.start_pos, m.STATEMENT_TOO_LONG.at(lines.span(first.start_pos, first.end_pos),
                                                                    tokens=MAX_STATEMENT_TOKENS))
    return parser.feed_eof()
