"""lark's tree to the AST: frozen nodes with spans, and the syntax errors the grammar cannot express
(a positional after an option, a malformed number, an unknown string escape, a space after `=`)."""

from __future__ import annotations

from collections.abc import Callable

from lark import Token, Tree

from dlc.compiler import messages as m
from dlc.compiler.diagnostics import Diagnostic
from dlc.grammar import nodes as n
from dlc.grammar.scanning import Lines


class Builder:
    """Lark tree to frozen AST nodes, with spans, reporting what the grammar cannot."""

    def __init__(self, text: str, lines: Lines, report: Callable[[Diagnostic], None]):
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
            self.report(m.POSITIONAL_AFTER_OPTION.at(misplaced[0].span.to(misplaced[-1].span),
                                                     statement=" ".join(pieces)))
        layer_prefix = False
        if keyword == "layer":
            if positionals and isinstance(positionals[0], n.Name):
                layer_prefix = True
                keyword, keyword_span = positionals[0].value, positionals[0].span
                positionals = positionals[1:]
            else:
                self.report(m.LAYER_WITHOUT_KIND.at(positionals[0].span if positionals else keyword_span))
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
            self.report(m.SPACE_AFTER_EQUALS.at(self.lines.span(key.end_pos, value.span.start)))
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
            self.invalid_number(m.INVALID_NUMBER.at(span, number=m.abridged(text)))
            return n.Int(0, span=span)
        try:
            if kind == "int":
                return n.Int(int(text), span=span)
            number = float(text)
        except ValueError:
            if kind == "int" and "__" not in text and not text.endswith("_"):
                return self.too_large(text, span)  # more digits than Python converts
            self.invalid_number(m.MISPLACED_UNDERSCORE.at(span, number=m.abridged(text)))
            return n.Int(0, span=span)
        if number in (float("inf"), float("-inf")):
            return self.too_large(text, span)
        return n.Float(number, span=span)

    def too_large(self, text: str, span: n.Span) -> n.Value:
        self.invalid_number(m.NUMBER_TOO_LARGE.at(span, number=m.abridged(text)))
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
                    self.report(m.UNKNOWN_ESCAPE.at(self.lines.span(at, at + 2), char=nxt))
                out.append(nxt)
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)
