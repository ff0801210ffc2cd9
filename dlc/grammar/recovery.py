"""Error recovery: what to say about the parse error lark stopped at, and how to blank the broken
statement in the working copy of the text so that parsing can go on past it.

The broken statement is replaced by placeholders of the same length, which the grammar reads as a
`broken` statement: every offset, line and column of the rest stays true. A stray closing bracket is
blanked alone, and an unclosed block's `{` becomes a separator. Every error's edits change at least
one character, so the parser's loop of passes ends.
"""

from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dlc.compiler import messages as m
from dlc.compiler.diagnostics import Diagnostic
from dlc.grammar.scanning import Lines, list_end, previous_char, scan, statement_end

PLACEHOLDER = "\x00"

# An edit of the working copy: `text[start:end]` becomes that many of the replacement character.
Edit = tuple[int, int, str]


def recover(e: UnexpectedInput, current: str, text: str, lines: Lines, part_start: int
            ) -> tuple[list[Diagnostic], list[Edit]]:
    """The diagnostics for this parse error (one, or one per unclosed block), and the edits to
    `current` that let parsing go on. The part of the text being parsed starts at `part_start`."""
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        pos = len(current)
    else:
        pos = e.pos_in_stream if isinstance(e, UnexpectedCharacters) else e.token.start_pos
    braces, bracket, stmt_start = scan(current, part_start, pos)
    stmt_end = statement_end(current, pos)
    blank_statement = [(stmt_start, stmt_end, PLACEHOLDER)]
    prev, prev_at = previous_char(current, pos)
    line_end = current.find("\n", pos)
    line_end = len(text) if line_end < 0 or line_end > len(text) else line_end
    at_pos = lines.span(pos, pos + 1)

    if isinstance(e, UnexpectedCharacters):
        c = current[pos]
        if c == '"':
            return ([m.UNTERMINATED_STRING.at(lines.span(pos, line_end))],
                    [(stmt_start, max(stmt_end, line_end), PLACEHOLDER)])
        if c == "=" and prev_at >= 0 and prev_at < pos - 1:
            return [m.SPACE_BEFORE_EQUALS.at(lines.span(prev_at + 1, pos + 1))], blank_statement
        word_start = pos
        while word_start > 0 and (current[word_start - 1].isalnum() or current[word_start - 1] == "_"):
            word_start -= 1
        before, before_at = previous_char(current, word_start)
        if c == "=" and before == "=" and word_start < pos:
            # `init= bias=false`: the lexer took `bias` as the value of `init=`
            return [missing_value(current, before_at, lines)], blank_statement
        if c == "=" and bracket is not None:
            return [m.OPTION_IN_LIST.at(at_pos)], blank_statement
        return [m.UNEXPECTED_CHARACTER.at(at_pos, char=c if c.isprintable() else m.code_point(c))], blank_statement

    assert isinstance(e, UnexpectedToken)
    token = e.token
    at_end = token.type in ("_NL", "$END", "SEMICOLON")
    if prev == "=" and (at_end or token.type in ("RBRACE", "RSQB", "OPTION_KEY")):
        return [missing_value(current, prev_at, lines)], blank_statement
    if bracket is not None and at_end:
        # A list continued over lines is one error, not one more for each line it continues on.
        return ([m.UNCLOSED_LIST.at(lines.span(bracket, bracket + 1))],
                [(stmt_start, list_end(current, pos), PLACEHOLDER)])
    if token.type == "$END" and braces:
        # Where a block was meant to end is unknowable, so each unclosed block's header becomes a
        # broken statement and its `{` a separator: the statements after it are checked at the top
        # level, and the broken header keeps the checker from blaming them for the missing block.
        # Every unclosed block is handled in this one pass: a pass per block would parse the whole
        # text once for each.
        return ([m.UNCLOSED_BLOCK.at(lines.span(brace, brace + 1)) for brace, _ in braces],
                [edit for brace, header_start in braces
                 for edit in ((header_start, brace, PLACEHOLDER), (brace, brace + 1, ";"))])
    if token.type == "RBRACE" and not braces:
        return [m.UNMATCHED_BRACE.at(at_pos)], [(pos, pos + 1, " ")]
    if token.type == "RSQB" and bracket is None:
        return [m.UNMATCHED_BRACKET.at(at_pos)], [(pos, pos + 1, " ")]
    if token.type == "LSQB" and bracket is not None:
        return [m.LIST_IN_LIST.at(at_pos)], blank_statement
    if bracket is not None:
        return ([m.UNEXPECTED_IN_LIST.at(lines.span(pos, max(token.end_pos or pos + 1, pos + 1)),
                                         token=m.token(token.type, token))], blank_statement)
    if token.type == "COMMA":
        return [m.COMMA_OUTSIDE_LIST.at(at_pos)], blank_statement
    end = token.end_pos if token.end_pos and token.type != "$END" else pos
    return ([m.UNEXPECTED_TOKEN.at(lines.span(pos, max(end, pos + (token.type != "$END"))),
                                   token=m.token(token.type, token))], blank_statement)


def missing_value(text: str, equals_at: int, lines: Lines) -> Diagnostic:
    """E102 for the option whose `=` is at `equals_at`."""
    key_start = equals_at
    while key_start > 0 and (text[key_start - 1].isalnum() or text[key_start - 1] == "_"):
        key_start -= 1
    return m.MISSING_VALUE.at(lines.span(key_start, equals_at + 1), key=text[key_start:equals_at])
