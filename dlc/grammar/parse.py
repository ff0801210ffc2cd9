"""Text to AST, reporting every syntax error in one pass.

Recovery: lark's LALR parser stops at the first error. We report it, replace the
broken statement in a working copy of the text by a placeholder of the same length
(so every offset, line and column stays true), and parse again. Each pass removes
at least one character of broken text, so the loop ends; the number of errors is
capped (MAX_DIAGNOSTICS) for pathological input.

The text is parsed a part at a time, each part ending at a line break between top-level
statements: a pass after an error parses its part again, not the whole text, and a caller
that has seen enough errors in the first parts (`parse_growing`) need not parse the rest.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dlc.compiler.diagnostics import MAX_DIAGNOSTICS, Diagnostic, error, stopped
from dlc.grammar import nodes as n

PLACEHOLDER = "\x00"
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


class _Lines:
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


def decode(data: bytes, path: str) -> tuple[str, list[Diagnostic]]:
    """Bytes of a spec file to text; a file that is not UTF-8 is one error at its first bad byte."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), []
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8").removeprefix("\ufeff")  # columns as in the text we would return
        lines = _Lines(path, good + " ")
        return "", [error("E111", lines.span(len(good), len(good) + 1),
                          f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
                          "save the spec as UTF-8 text; a spec is never binary")]


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
# What decides where a top-level statement can end: strings and comments (which may hold anything),
# braces, brackets and separators.
_STRUCTURE = re.compile(r'"(?:\\.|[^"\\\n])*"?|#[^\n]*|[{}\[\];\n]')
# A line that carries a list on from the line before (recovery reads it as part of the same statement).
_LIST_GOES_ON = re.compile(r"[ \t\r\f]*[\],]")


class _Parse:
    """A spec's parse so far: the statements of `text[:done]` and the syntax errors found in it."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.lines = _Lines(path, text)
        self.diagnostics: list[Diagnostic] = []
        self.working = list(text)
        self.builder = _Builder(text, self.lines, self.report)
        self.statements: list[n.Node] = []
        self.done = 0
        self.stopped = False
        try:
            for m in _CONTROL.finditer(text):
                i, c = m.start(), m.group()
                self.working[i] = " "
                self.report(error("E100", self.lines.span(i, i + 1), f"unexpected control character `{_code_point(c)}`",
                                  "remove it: a spec is plain text"))
        except _TooMany:
            self.stop()

    def report(self, d: Diagnostic) -> None:
        if len(self.diagnostics) >= MAX_SYNTAX_ERRORS:
            raise _TooMany
        self.diagnostics.append(d)

    def stop(self) -> None:
        self.stopped = True
        end = len(self.text)
        self.diagnostics.append(stopped(self.lines.span(end, end), "syntax errors"))

    def upto(self, size: int) -> tuple[n.Spec, list[Diagnostic], bool]:
        """The parse of the parts that start before `size`: the spec, its syntax errors, whether it is whole.
        A file with too many syntax errors is an empty spec: what the parser made of it is no spec."""
        try:
            while not self.stopped and self.done < min(size, len(self.text)):
                end = _part_end(self.text, self.done)
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
                found, edits = _recover(e, current, self.text, self.lines, start)
            except _Refused as e:
                found = [e.diagnostic]
                edits = [(e.start, _statement_end(current, e.start, e.whole_block), PLACEHOLDER)]
            else:  # without the placeholder for the text before the part
                return self.builder.statements([child for child in tree.children
                                                if child.data != "broken" or child.children[0].start_pos >= start])
            for d in found:
                self.report(d)
            if not self.edit(edits, end):  # cannot happen for well-formed recovery; never loop forever
                return []

    def edit(self, edits: list[tuple[int, int, str]], part_end: int) -> bool:
        """Apply recovery's edits to the working copy; whether any changed it."""
        changed = False
        for start, end, replacement in edits:
            # Line breaks inside a broken statement are blanked too, so that it stays one `Broken`
            # node; positions still come from `text`, so lines and columns stay true.
            for i in range(start, min(end, part_end)):
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


def _tree(current: str, lines: _Lines) -> Tree:
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
                               error("E101", lines.span(token.start_pos, token.end_pos),
                                     f"blocks nest more than {MAX_BLOCK_DEPTH} deep",
                                     "repeat a block with `repeat N { ... }` instead of nesting it"), whole_block=True)
        elif token.type == "RBRACE":
            depth = max(depth - 1, 0)
        if token.type in _STATEMENT_ENDS:
            first, count = None, 0
            continue
        first, count = first or token, count + 1
        if count > MAX_STATEMENT_TOKENS:
            raise _Refused(first.start_pos, error("E101", lines.span(first.start_pos, first.end_pos),
                                                  f"this statement holds more than {MAX_STATEMENT_TOKENS:,} tokens",
                                                  "no statement takes so many: end each one with a line break or `;`"))
    return parser.feed_eof()


def _part_end(text: str, start: int) -> int:
    """Where the part of the text from `start` ends: just after the first separator, PART_CHARS on, that
    lies between top-level statements (outside blocks, strings and comments, and not where recovery
    would read a broken list on past it), or at the end of the text."""
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
                continued = bool(_LIST_GOES_ON.match(text, m.end())) or _previous_char(text, at)[0] in ",["
            if at >= start + PART_CHARS and not (in_list or continued):
                return m.end()
    return len(text)


def _scan(text: str, start: int, upto: int) -> tuple[list[tuple[int, int]], int | None, int]:
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
            i += 1
            while i < upto and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
            if i < upto and text[i] == "\n":
                continue  # an unterminated string ends at the line break, which still separates statements
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


def _statement_end(text: str, pos: int, whole_block: bool = False) -> int:
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
            i += 1
            while i < len(text) and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
            if i < len(text) and text[i] == "\n":
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


def _previous_char(text: str, pos: int) -> tuple[str, int]:
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


def _list_end(text: str, line_end: int) -> int:
    """Where a list that runs past `line_end` was meant to end: a line carries on to the next when
    its code ends with `,` or `[`, or when the next line starts with `]` or `,`. A line with a
    brace is never taken: it belongs to a block."""
    end = line_end
    while end < len(text):
        next_end = text.find("\n", end + 1)
        next_end = len(text) if next_end < 0 else next_end
        next_line = text[end + 1:next_end]
        carries_on = _previous_char(text, end)[0] in (",", "[") or next_line.lstrip()[:1] in ("]", ",")
        if not carries_on or "{" in next_line or "}" in next_line:
            break
        end = next_end
    return end


def _abridged(text: str, keep: int = 40) -> str:
    """Source text for a message, its middle left out when it is long (a megabyte-long number)."""
    return text if len(text) <= keep else f"{text[:keep - 10]}...{text[-7:]}"


def _code_point(c: str) -> str:
    """An invisible character as the user can look it up: `U+00A0`."""
    return f"U+{ord(c):04X}"


def _missing_value(text: str, equals_at: int, lines: _Lines) -> Diagnostic:
    """E102 for the option whose `=` is at `equals_at`."""
    key_start = equals_at
    while key_start > 0 and (text[key_start - 1].isalnum() or text[key_start - 1] == "_"):
        key_start -= 1
    key = text[key_start:equals_at]
    return error("E102", lines.span(key_start, equals_at + 1), f"missing value after `{key}=`",
                 f"give `{key}` a value right after `=`, or remove the option")


def _describe(token: Token) -> str:
    if token.type in ("_NL", "$END"):
        return "end of line" if token.type == "_NL" else "end of file"
    return f"`{token}`"


def _recover(e: UnexpectedInput, current: str, text: str, lines: _Lines, part_start: int
             ) -> tuple[list[Diagnostic], list]:
    """The diagnostics for this parse error (one, or one per unclosed block), and the edits to
    `current` that let parsing go on. The part of the text being parsed starts at `part_start`."""
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        pos = len(current)
    else:
        pos = e.pos_in_stream if isinstance(e, UnexpectedCharacters) else e.token.start_pos
    braces, bracket, stmt_start = _scan(current, part_start, pos)
    stmt_end = _statement_end(current, pos)
    blank_statement = [(stmt_start, stmt_end, PLACEHOLDER)]
    prev, prev_at = _previous_char(current, pos)
    line_end = current.find("\n", pos)
    line_end = len(text) if line_end < 0 or line_end > len(text) else line_end

    if isinstance(e, UnexpectedCharacters):
        c = current[pos]
        if c == '"':
            return ([error("E106", lines.span(pos, line_end), "unterminated string",
                           'close it with `"` on the same line; write `\\"` for a quote inside it')],
                    [(stmt_start, max(stmt_end, line_end), PLACEHOLDER)])
        if c == "=" and prev_at >= 0 and prev_at < pos - 1:
            return ([error("E108", lines.span(prev_at + 1, pos + 1), "space before `=` in an option",
                           "write options as `name=value`, with no spaces around `=`")], blank_statement)
        word_start = pos
        while word_start > 0 and (current[word_start - 1].isalnum() or current[word_start - 1] == "_"):
            word_start -= 1
        before, before_at = _previous_char(current, word_start)
        if c == "=" and before == "=" and word_start < pos:
            # `init= bias=false`: the lexer took `bias` as the value of `init=`
            return [_missing_value(current, before_at, lines)], blank_statement
        if c == "=" and bracket is not None:
            return ([error("E101", lines.span(pos, pos + 1), "an option cannot go inside a list",
                           "a list holds values only, like `[16, 32]`")], blank_statement)
        shown = c if c.isprintable() else _code_point(c)
        return ([error("E100", lines.span(pos, pos + 1), f"unexpected character `{shown}`",
                       "names are letters, digits and `_`; strings go in double quotes")], blank_statement)

    assert isinstance(e, UnexpectedToken)
    token = e.token
    at_end = token.type in ("_NL", "$END", "SEMICOLON")
    if prev == "=" and (at_end or token.type in ("RBRACE", "RSQB", "OPTION_KEY")):
        return [_missing_value(current, prev_at, lines)], blank_statement
    if bracket is not None and at_end:
        # A list continued over lines is one error, not one more for each line it continues on.
        return ([error("E110", lines.span(bracket, bracket + 1), "this `[` is never closed",
                       "close the list with `]` on the same line")], [(stmt_start, _list_end(current, pos), PLACEHOLDER)])
    if token.type == "$END" and braces:
        # Where a block was meant to end is unknowable, so each unclosed block's header becomes a
        # broken statement and its `{` a separator: the statements after it are checked at the top
        # level, and the broken header keeps the checker from blaming them for the missing block.
        # Every unclosed block is handled in this one pass: a pass per block would parse the whole
        # text once for each.
        return ([error("E103", lines.span(brace, brace + 1), "this `{` is never closed", "close the block with `}`")
                 for brace, _ in braces],
                [edit for brace, header_start in braces
                 for edit in ((header_start, brace, PLACEHOLDER), (brace, brace + 1, ";"))])
    if token.type == "RBRACE" and not braces:
        return ([error("E104", lines.span(pos, pos + 1), "unmatched `}`", "remove it, or open a block before it")],
                [(pos, pos + 1, " ")])
    if token.type == "RSQB" and bracket is None:
        return ([error("E104", lines.span(pos, pos + 1), "unmatched `]`",
                       "remove it; a list is written `[a, b, c]`")], [(pos, pos + 1, " ")])
    if token.type == "LSQB" and bracket is not None:
        return ([error("E101", lines.span(pos, pos + 1), "a list cannot hold another list",
                       "a sweep axis is one flat list, like `[1e-3, 1e-2]`")], blank_statement)
    if bracket is not None:
        return ([error("E101", lines.span(pos, max(token.end_pos or pos + 1, pos + 1)),
                       f"unexpected {_describe(token)} in a list", "separate list items with `,`")], blank_statement)
    if token.type == "COMMA":
        return ([error("E101", lines.span(pos, pos + 1), "unexpected `,` outside a list",
                       "separate values with spaces; commas only separate the items of a `[...]` list")],
                blank_statement)
    end = token.end_pos if token.end_pos and token.type != "$END" else pos
    return ([error("E101", lines.span(pos, max(end, pos + (token.type != "$END"))),
                   f"unexpected {_describe(token)}",
                   "a statement is `keyword positional* option*`, like `dense 64 relu` or `optimizer adam lr=1e-3`")],
            blank_statement)


# --- tree to AST ----------------------------------------------------------------------------


class _Builder:
    """Lark tree to frozen AST nodes, with spans, reporting what the grammar cannot."""

    def __init__(self, text: str, lines: _Lines, report: Callable[[Diagnostic], None]):
        self.text = text
        self.lines = lines
        self.report = report
        self.bad_numbers = 0  # E109s so far: a statement holding one has no meaning

    def span_of(self, item: Tree | Token) -> n.Span:
        if isinstance(item, Token):
            return self.lines.span(item.start_pos, item.end_pos)
        return self.lines.span(item.meta.start_pos, item.meta.end_pos)

    def statements(self, items: list) -> list[n.Node]:
        out = []
        for item in items:
            if item.data == "broken":
                out.append(self.broken(item))
            else:
                out.append(self.statement(item))
        return out

    def broken(self, tree: Tree) -> n.Broken:
        token = tree.children[0]
        start, end = token.start_pos, token.end_pos
        words = self.text[start:end].split()
        keyword = None
        if words:
            first = words[0].split("=")[0]
            if first == "layer" and len(words) > 1:
                first = words[1].split("=")[0]
            keyword = first if first.isidentifier() else None
        return n.Broken(keyword, span=self.lines.span(start, end))

    def statement(self, tree: Tree) -> n.Node:
        head: Token = tree.children[0]
        keyword, keyword_span = str(head), self.span_of(head)
        bad_numbers_before = self.bad_numbers
        positionals: list[n.Value] = []
        options: list[n.Option] = []
        misplaced: list[n.Value] = []
        args = tree.children[1:]
        block_tree = args.pop() if args and args[-1].data == "block" else None
        for child in args:
            if child.data == "option":
                options.append(self.option(child))
            else:
                value = self.value(child)
                if options:
                    misplaced.append(value)
                else:
                    positionals.append(value)
        if misplaced:
            pieces = [keyword] + [self.text[v.span.start:v.span.end] for v in positionals + misplaced] + \
                [self.text[o.span.start:o.span.end] for o in options]
            self.report(error("E105", misplaced[0].span.to(misplaced[-1].span),
                              "positional value after an option",
                              f"positionals come before options: `{' '.join(pieces)}`"))
        layer_prefix = False
        if keyword == "layer":
            if positionals and isinstance(positionals[0], n.Name):
                layer_prefix = True
                keyword, keyword_span = positionals[0].value, positionals[0].span
                positionals = positionals[1:]
            else:
                where = positionals[0].span if positionals else keyword_span
                self.report(error("E101", where, "`layer` must be followed by a layer name",
                                  "write `layer dense 64 relu`, or just `dense 64 relu`"))
        # A bad number leaves the statement's meaning unknown; errors inside its block do not.
        broken = self.bad_numbers > bad_numbers_before or (
            keyword == "layer" and not layer_prefix)
        block = None if block_tree is None else tuple(self.statements(block_tree.children))
        span = self.span_of(tree)
        if broken:
            return n.Broken(keyword, span=span)
        return n.Statement(keyword, tuple(positionals), tuple(options), block, span=span,
                           keyword_span=keyword_span, layer_prefix=layer_prefix)

    def option(self, tree: Tree) -> n.Option:
        key: Token = tree.children[0]
        value = self.value(tree.children[1])
        if value.span.start != key.end_pos:
            self.report(error("E108", self.lines.span(key.end_pos, value.span.start),
                              "space after `=` in an option",
                              "write options as `name=value`, with no spaces around `=`"))
        name_span = self.lines.span(key.start_pos, key.end_pos - 1)
        return n.Option(str(key)[:-1], value, span=self.span_of(key).to(value.span), name_span=name_span)

    def value(self, tree: Tree) -> n.Value:
        if tree.data == "list":
            return n.List(tuple(self.value(c) for c in tree.children), span=self.span_of(tree))
        token: Token = tree.children[0]
        span = self.span_of(token)
        text = str(token)
        kind = tree.data
        if kind == "name":
            if text in ("true", "false"):
                return n.Bool(text == "true", span=span)
            return n.Name(text, span=span)
        if kind == "string":
            return n.Str(self.unescape(text, span), span=span)
        if kind == "shape":
            try:
                return n.Shape(tuple(int(d) for d in text.split("x")), span=span)
            except ValueError:  # a side with more digits than Python converts
                return self.too_large(text, span)
        if kind == "bad_number":
            self.invalid_number(error("E109", span, f"`{_abridged(text)}` is not a valid number",
                                          "separate values with spaces; numbers look like `64`, `60_000`, "
                                          "`0.5`, `1e-3`, and shapes like `3x3`"))
            return n.Int(0, span=span)
        try:
            if kind == "int":
                return n.Int(int(text), span=span)
            number = float(text)
        except ValueError:
            if kind == "int" and "__" not in text and not text.endswith("_"):
                return self.too_large(text, span)  # more digits than Python converts
            self.invalid_number(error("E109", span, f"`{_abridged(text)}` is not a valid number",
                                          "`_` may only separate digits, as in `60_000`"))
            return n.Int(0, span=span)
        if number in (float("inf"), float("-inf")):
            return self.too_large(text, span)
        return n.Float(number, span=span)

    def too_large(self, text: str, span: n.Span) -> n.Value:
        self.invalid_number(error("E109", span, f"`{_abridged(text)}` is too large to be a number",
                                      "use a finite number"))
        return n.Float(0.0, span=span)

    def invalid_number(self, d: Diagnostic) -> None:
        self.bad_numbers += 1
        self.report(d)

    def unescape(self, text: str, span: n.Span) -> str:
        body, out, i = text[1:-1], [], 0
        while i < len(body):
            c = body[i]
            if c == "\\":
                nxt = body[i + 1]
                if nxt not in '"\\':
                    at = span.start + 1 + i
                    self.report(error("E107", self.lines.span(at, at + 2),
                                      f"unknown escape `\\{nxt}` in a string",
                                      'only `\\"` and `\\\\` are escapes; write `/` in paths'))
                out.append(nxt)
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)
