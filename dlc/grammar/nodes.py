"""The AST: frozen dataclasses, each node with the span of source it came from.

Spans do not take part in equality, so that `parse(print(ast)) == ast` compares
meaning, not layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A stretch of source. Lines and columns start at 1; `end_col` is exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int
    end: int

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of `other`."""
        return Span(self.path, self.line, self.col, other.end_line, other.end_col, self.start, other.end)


NO_SPAN = Span("<none>", 1, 1, 1, 1, 0, 0)


@dataclass(frozen=True)
class Value:
    span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Int(Value):
    value: int


@dataclass(frozen=True)
class Float(Value):
    value: float


@dataclass(frozen=True)
class Shape(Value):
    dims: tuple[int, ...]


@dataclass(frozen=True)
class Str(Value):
    value: str


@dataclass(frozen=True)
class Bool(Value):
    value: bool


@dataclass(frozen=True)
class Name(Value):
    value: str


@dataclass(frozen=True)
class List(Value):
    """A sweep axis: one run per element."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class Option:
    name: str
    value: Value
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Statement:
    """`keyword positional* option* [{ block }]`. A leading `layer` becomes `layer_prefix`."""

    keyword: str
    positionals: tuple[Value, ...] = ()
    options: tuple[Option, ...] = ()
    block: tuple[Node, ...] | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    keyword_span: Span = field(default=NO_SPAN, compare=False, repr=False)
    # True when the source said `layer NAME`: the statement must then be a layer. It takes part
    # in equality because it changes what the statement means.
    layer_prefix: bool = False

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


@dataclass(frozen=True)
class Broken:
    """A statement with a syntax error, already reported. `keyword` is its first word, if any.

    The checker uses it to avoid blaming later statements for it (no cascades).
    """

    keyword: str | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Node = Statement | Broken


@dataclass(frozen=True)
class Spec:
    statements: tuple[Node, ...]
    path: str = field(default="<spec>", compare=False)
    source: str = field(default="", compare=False, repr=False)
