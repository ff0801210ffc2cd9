"""What every registry entry is made of: typed parameters with ranges and defaults, and the
shape vocabulary of layer rules. Pure Python, so that checking never imports JAX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # the default of a parameter that must be given


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return False
        return True

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '≥'} {_num(self.lo)}"
        return f"{'<' if self.hi_open else '≤'} {_num(self.hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


POSITIVE = Range(lo=1)
NON_NEGATIVE = Range(lo=0)
GREATER_THAN_ZERO = Range(lo=0, lo_open=True)
FRACTION = Range(lo=0, hi=1, hi_open=True)  # rates and fractions: [0, 1)
PROBABILITY_OPEN = Range(lo=0, hi=1, lo_open=True, hi_open=True)

# What a parameter's value must be. `ref` names a table below; `size` is INT or HxW.
KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "`true` or `false`",
    "name": "a name",
    "string": "a string in double quotes",
    "shape": "a shape like `28x28x1` or an integer",
    "size": "an integer or a shape like `3x3`",
    "choice": "one of the names listed",
    "ref": "a name",
    "source": "a built-in dataset name or a file path in double quotes",
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    range: Range | None = None
    positional: bool = False
    choices: tuple[str, ...] = ()
    table: str | None = None  # for kind "ref": which table the name is looked up in
    variadic: bool = False  # a positional that takes one or more values
    synonyms: tuple[str, ...] = ()  # names users try for it (`learning_rate`): did-you-mean only
    maximum_doc: str = ""
    # Changes no shape and no structure of the compiled program (an optimizer's number, a dropout rate,
    # the seed): members of a sweep that differ only in such values can train as one program, vmapped
    # over the members with the values as arrays. Sweep groups read it (`dlc/compiler/sweeps.py`).
    shape_free: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def option(name: str, kind: str, doc: str, default: Any = None, **kw: Any) -> Param:
    return Param(name, kind, doc, default, **kw)


def positional(name: str, kind: str, doc: str, default: Any = REQUIRED, **kw: Any) -> Param:
    return Param(name, kind, doc, default, positional=True, **kw)


@dataclass(frozen=True)
class Entry:
    """One named thing of the language."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    example: str = ""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def positionals(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.positional)

    @property
    def options(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.positional)


class ShapeError(Exception):
    """A layer cannot take its input shape. `code` is the diagnostic code."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


Shape = tuple[int, ...]


def show_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape) if shape else "scalar"
