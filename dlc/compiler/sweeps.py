"""Sweeps: a spec with lists (`lr=[1e-3, 1e-2]`, `seed [0, 1, 2]`) stands for one member per
combination of their values, in source order, the last list varying fastest. A stage of the checker
(`check.py`).

Each member is the spec with one element in place of each list, checked as an ordinary spec by the
checker's own stages, so a member's IR is by construction the IR of the spec written with its values,
and every rule holds for every member. The members' diagnostics are merged, one per place: a value out
of range is reported at that element (by each member that holds it, once), and an error no list causes
is reported by every member alike, once. An empty list stays in place and is reported where values are
bound (E306); a product past MAX_MEMBERS is one error (E311) and only the first member is checked.
Members are then grouped by the values that change a shape: the registry marks the parameters whose
values do not (`Param.shape_free`), so no list of names lives here.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dlc.compiler import ir
from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.diagnostics import MAX_DIAGNOSTICS, Diagnostic, file_span, sort_key
from dlc.compiler.registry import Param
from dlc.grammar import nodes as n

# Members a sweep may have: a grid of five lists of four values, and few enough that checking every
# member stays quick; ten lists of ten (a slip, ten billion members) must be an error, not a hang.
MAX_MEMBERS = 1024
# The characters a label keeps from a value as written; any other becomes `_` (a folder is named by it).
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_LABEL_VALUE = 64  # characters of one value in a label, at most


@dataclass(frozen=True)
class Axis:
    """A list in the spec, in the statement that holds it (`option`: the option it is the value of)."""

    statement: n.Statement
    values: n.List
    option: str | None


class MemberChecker(Protocol):
    """What a member's check leaves that the sweep reads: layer names and the values as bound."""

    layer_spans: dict[str, n.Span]
    bound_values: dict[int, tuple[Param, Any]]


CheckMember = Callable[[n.Spec], tuple[MemberChecker, ir.Program | None, list[Diagnostic]]]


def axes(spec: n.Spec) -> list[Axis]:
    """Every list with values, in source order."""
    return sorted(_axes(spec.statements), key=lambda axis: axis.values.span.start)


def _axes(nodes: tuple[n.Node, ...]) -> Iterator[Axis]:
    for node in nodes:
        if not isinstance(node, n.Statement):
            continue
        valued = [(None, v) for v in node.positionals] + [(o.name, o.value) for o in node.options]
        for option, value in valued:
            if isinstance(value, n.List) and value.items:
                yield Axis(node, value, option)
        yield from _axes(node.block or ())


def check_sweep(spec: n.Spec, lists: list[Axis], check_member: CheckMember) -> tuple[ir.Program | None,
                                                                                        list[Diagnostic]]:
    """Check every member; the first member's IR carrying the sweep, or None when any member has an error."""
    merged = _Merged(spec.path)
    lengths = [len(axis.values.items) for axis in lists]
    count = math.prod(lengths)
    if count > MAX_MEMBERS:
        merged.add([_too_many(lists, lengths, count)])
        merged.add(check_member(_member(spec, lists, (0,) * len(lists)))[2])
        return None, merged.diagnostics()
    members: list[tuple[MemberChecker, ir.Program | None]] = []
    for choice in itertools.product(*(range(length) for length in lengths)):
        if merged.errors >= MAX_DIAGNOSTICS:  # what is not shown is not worth finding
            merged.stopped = True
            break
        checker, program, found = check_member(_member(spec, lists, choice))
        members.append((checker, program and dataclasses.replace(program, source=_member_text(spec, lists, choice))))
        merged.add(found)
    diagnostics = merged.diagnostics()
    if any(d.is_error for d in diagnostics) or any(program is None for _, program in members):
        return None, diagnostics
    sweep = _sweep(spec, lists, members)
    return dataclasses.replace(sweep.members[0], sweep=sweep, source=spec.source), diagnostics


def _member(spec: n.Spec, lists: list[Axis], choice: tuple[int, ...]) -> n.Spec:
    """The spec with the chosen element of each list in its place (the element's node, span and all)."""
    chosen = {id(axis.values): axis.values.items[i] for axis, i in zip(lists, choice, strict=True)}
    return dataclasses.replace(spec, statements=tuple(_substituted(node, chosen) for node in spec.statements))


def _member_text(spec: n.Spec, lists: list[Axis], choice: tuple[int, ...]) -> str:
    """The spec's text with each list replaced by the chosen element as written: a member's own spec,
    which its run folder keeps (checking reads the sweep's text, which the spans point into)."""
    pieces, at = [], 0
    for axis, i in zip(lists, choice, strict=True):
        item = axis.values.items[i].span
        pieces += [spec.source[at:axis.values.span.start], spec.source[item.start:item.end]]
        at = axis.values.span.end
    return "".join(pieces) + spec.source[at:]


def _substituted(node: n.Node, chosen: dict[int, n.Value]) -> n.Node:
    if not isinstance(node, n.Statement):
        return node
    return dataclasses.replace(
        node, positionals=tuple(chosen.get(id(v), v) for v in node.positionals),
        options=tuple(dataclasses.replace(o, value=chosen[id(o.value)]) if id(o.value) in chosen else o
                      for o in node.options),
        block=None if node.block is None else tuple(_substituted(child, chosen) for child in node.block))


def _too_many(lists: list[Axis], lengths: list[int], count: int) -> Diagnostic:
    """E311 at the list that takes the product past MAX_MEMBERS, the lengths multiplied in the message."""
    at = next(i for i, product in enumerate(itertools.accumulate(lengths, operator.mul)) if product > MAX_MEMBERS)
    return m.TOO_MANY_MEMBERS.at(lists[at].values.span, members=count, limit=MAX_MEMBERS,
                                 lengths=" × ".join(map(str, lengths)))


class _Merged:
    """The members' diagnostics, one per code and place, in the words of the first member that gave it;
    at most as many as a file shows, then the one that says checking stopped."""

    def __init__(self, path: str):
        self.stop = m.TOO_MANY_ERRORS.at(file_span(path), limit=MAX_DIAGNOSTICS)
        self.seen: dict[tuple, Diagnostic] = {}
        self.stopped = False  # a member stopped at the cap
        self.errors = 0

    def add(self, found: list[Diagnostic]) -> None:
        for d in found:
            if d == self.stop:
                self.stopped = True
            elif (place := (d.code, d.span.path, d.span.start, d.span.end)) not in self.seen:
                self.seen[place] = d
                self.errors += d.is_error

    def diagnostics(self) -> list[Diagnostic]:
        out = sorted(self.seen.values(), key=sort_key)
        return out[:MAX_DIAGNOSTICS] + [self.stop] if self.stopped or len(out) > MAX_DIAGNOSTICS else out


def _sweep(spec: n.Spec, lists: list[Axis], members: list[tuple[MemberChecker, ir.Program]]) -> ir.Sweep:
    items = {id(item) for axis in lists for item in axis.values.items}
    bound: dict[int, tuple[Param, Any]] = {}  # each element as bound, by any member that holds it
    for checker, _ in members:
        bound.update((key, checker.bound_values[key]) for key in items - bound.keys() if key in checker.bound_values)
    names: list[str] = []
    for axis in lists:
        names.append(_unique(_axis_name(axis, members[0][0], bound), names, axis))
    sweep_axes = tuple(ir.SweepAxis(name, tuple(bound[id(item)][1] for item in axis.values.items),
                                    axis.values.span.line) for name, axis in zip(names, lists, strict=True))
    shaping = [a for a, axis in enumerate(lists) if not all(bound[id(item)][0].shape_free for item in axis.values.items)]
    written = [[_written(spec, item) for item in axis.values.items] for axis in lists]
    labels: list[str] = []
    times: Counter[str] = Counter()  # a value written twice in a list makes two members alike
    groups: dict[tuple, list[int]] = {}
    for k, choice in enumerate(itertools.product(*(range(len(axis.values.items)) for axis in lists))):
        label = ",".join(f"{name}={written[a][i]}" for a, (name, i) in enumerate(zip(names, choice, strict=True)))
        times[label] += 1
        labels.append(label if times[label] == 1 else f"{label}~{times[label]}")
        groups.setdefault(tuple(repr(sweep_axes[a].values[choice[a]]) for a in shaping), []).append(k)
    if _trains_apart(members[0][1]):
        groups = {(k,): [k] for k in range(len(members))}
    return ir.Sweep(sweep_axes, tuple(program for _, program in members), tuple(labels),
                    tuple(tuple(group) for group in groups.values()))


def _trains_apart(program: ir.Program) -> bool:
    """Whether the members train one after another, each its own program, as `runtime/sweep.py`
    trains them: from a run (`init`), or with a schedule that lowers the rate between epochs from
    a monitored value (`on_plateau`). What the data or the backend decide (members' class weights,
    convolutions on a CPU, a device the group's data would crowd) only training knows: there the
    summary's count is the fewest programs training makes."""
    return program.init is not None or reg.lookup("schedule", program.schedule.name).on_plateau


def _axis_name(axis: Axis, first: MemberChecker, bound: dict[int, tuple[Param, Any]]) -> str:
    """`lr` for an option of a setting, `seed` for its value; `dropout_1.rate` for a layer's parameter,
    after the first layer the statement makes (a statement in `repeat` makes one per copy)."""
    param = bound[id(axis.values.items[0])][0]
    statement = axis.statement
    starts = {statement.span.start, statement.keyword_span.start}
    layer = next((name for name, span in first.layer_spans.items() if span.start in starts), None)
    if layer is not None:
        return f"{layer}.{param.name}"
    return axis.option or statement.keyword


def _unique(name: str, taken: list[str], axis: Axis) -> str:
    """A name no earlier axis has: an option qualified by its statement (`schedule.alpha`), then numbered."""
    if name in taken and axis.option:
        name = f"{axis.statement.keyword}.{name}"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _written(spec: n.Spec, item: n.Value) -> str:
    """A value as written, for a label: a string without its quotes; unsafe characters as `_`."""
    text = item.value if isinstance(item, n.Str) else spec.source[item.span.start:item.span.end]
    return _UNSAFE.sub("_", text)[:_LABEL_VALUE] or "_"
