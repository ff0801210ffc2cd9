"""What can be told of spec text without parsing it: the line and column of an offset, and where
statements, blocks and lists begin and end, strings and comments skipped. Recovery reads a broken
statement's extent with these, and the parser where a part of the text may end."""

from __future__ import annotations

import bisect
import re

from dlc.grammar import nodes as n

# What decides where a top-level statement can end: strings and comments (which may hold anything),
# braces, brackets and separators.
_STRUCTURE = re.compile(r'"(?:\\.|[^"\\\n])*"?|#[^\n]*|[{}\[\];\n]')
# A line that carries a list on from the line before (recovery reads it as part of the same statement).
_LIST_GOES_ON = re.compile(r"[ \t\r\f]*[\],]")


class Lines:
    """Offsets to 1-based line and column."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.length = len(text)
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def span(self, start: int, end: int) -> n.Span:
        """The span of `text[start:end]`, kept inside the text (recovery may parse past its end)."""
        start = min(start, self.length)
        end = min(max(end, start), self.length)
        line, col = self.position(start)
        end_line, end_col = self.position(end)
        return n.Span(self.path, line, col, end_line, end_col, start, end)


def part_end(text: str, start: int, size: int) -> int:
    """Where the part of the text from `start` ends: just after the first separator, `size` characters
    on, that lies between top-level statements (outside blocks, strings and comments, and not where
    recovery would read a broken list on past it), or at the end of the text."""
    depth, in_list, continued = 0, False, False  # continued: this line carries a list on from the last
    for m in _STRUCTURE.finditer(text, start):
        c, at = m.group(), m.start()
        if c in "{}":
            depth = depth + 1 if c == "{" else max(depth - 1, 0)
        elif c in "[]":
            in_list = c == "["
        elif depth == 0 and c in ";\n":
            if c == "\n":
                in_list = False
                continued = bool(_LIST_GOES_ON.match(text, m.end())) or previous_char(text, at)[0] in ",["
            if at >= start + size and not (in_list or continued):
                return m.end()
    return len(text)


def scan(text: str, start: int, upto: int) -> tuple[list[tuple[int, int]], int | None, int]:
    """Structure of `text[start:upto]`, where `start` lies between top-level statements: each open `{`
    with where its header statement starts, an open `[` in the current statement, and where the
    current statement starts."""
    braces: list[tuple[int, int]] = []
    bracket: int | None = None
    stmt_start = start
    i = start
    while i < upto:
        c = text[i]
        if c == '"':
            i = _string_end(text, i, upto)
            continue
        elif c == "#":
            while i < upto and text[i] != "\n":
                i += 1
            continue
        elif c in ";\n":
            stmt_start, bracket = i + 1, None
        elif c == "{":
            braces.append((i, stmt_start))
            stmt_start = i + 1
        elif c == "}":
            # A closed block ends its header's statement only at the next separator: what follows
            # `}` on the same line (`repeat 2 {} dense 4`) belongs to that statement, and breaks it.
            stmt_start = braces.pop()[1] if braces else i + 1
        elif c == "[":
            bracket = i
        elif c == "]":
            bracket = None
        i += 1
    return braces, bracket, stmt_start


def statement_end(text: str, pos: int, whole_block: bool = False) -> int:
    """The offset where the statement around `pos` ends: the next separator or closing brace of its level.

    A block of the statement that is never closed does not swallow the rest of the file: the
    statement then ends at its first line break, and the lines after it are parsed as usual;
    unless `whole_block`, when the block holds the rest of the text.
    """
    depth = 0
    first_break: int | None = None
    i = pos
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string_end(text, i, len(text))
            continue
        elif c == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        elif c in ";\n" and depth == 0:
            return i
        elif c == "\n" and first_break is None:
            first_break = i
        i += 1
    return first_break if depth > 0 and first_break is not None and not whole_block else len(text)


def _string_end(text: str, start: int, upto: int) -> int:
    """Just after the string that opens at `start`, or, for one left unterminated, at the line break
    that ends it, which still separates statements. A backslash escapes the next character, but not a
    line break: a string never goes on to the next line, as the grammar's STRING does not."""
    i = start + 1
    while i < upto and text[i] not in '"\n':
        i += 2 if text[i] == "\\" and text[i + 1:i + 2] != "\n" else 1
    return i + 1 if i < upto and text[i] == '"' else i


def previous_char(text: str, pos: int) -> tuple[str, int]:
    """The last character of code before `pos`, skipping blanks and a comment on the same line."""
    line_start = text.rfind("\n", 0, pos) + 1
    in_string = False
    for j in range(line_start, pos):
        if text[j] == '"' and (j == 0 or text[j - 1] != "\\"):
            in_string = not in_string
        elif text[j] == "#" and not in_string:
            pos = j
            break
    i = pos - 1
    while i >= 0 and text[i] in " \t\r\f":
        i -= 1
    return (text[i], i) if i >= 0 else ("", -1)


def list_end(text: str, line_end: int) -> int:
    """Where a list that runs past `line_end` was meant to end: a line carries on to the next when
    its code ends with `,` or `[`, or when the next line starts with `]` or `,`. A line with a
    brace is never taken: it belongs to a block."""
    end = line_end
    while end < len(text):
        next_end = text.find("\n", end + 1)
        next_end = len(text) if next_end < 0 else next_end
        next_line = text[end + 1:next_end]
        carries_on = previous_char(text, end)[0] in (",", "[") or next_line.lstrip()[:1] in ("]", ",")
        if not carries_on or "{" in next_line or "}" in next_line:
            break
        end = next_end
    return end
