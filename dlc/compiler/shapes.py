"""Layers and shapes: shapes inferred layer by layer through nested blocks, layers named, and the
model's size capped. A stage of the checker (`check.py`)."""

from __future__ import annotations

import math
from typing import Any

from dlc.compiler import ir
from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.binding import _UNKNOWN, _Bound
from dlc.compiler.diagnostics import Diagnostic, Label, error
from dlc.compiler.registry import ShapeError, show_shape
from dlc.grammar import nodes as n

# How many layers a model may have once `repeat` blocks are expanded: ten times the deepest networks
# in use (ResNet-1001), and few enough that checking and building the model stay fast.
MAX_LAYERS = 10_000


class ShapeStage:
    """Shapes through the layers, layer names, and the warnings about a layer's settling."""

    # Whether the next layer takes the model's input: True before the first, False after it, None
    # once a broken or unknown statement came first (what the model starts with is then unknown).
    at_input: bool | None = True
    token_reported: frozenset[int] = frozenset()  # statements E407 or E408 was reported at

    def check_layers(self, nodes: list[n.Node], shape: tuple[int, ...] | None,
                     top: bool = False) -> tuple[list[ir.Layer], tuple[int, ...] | None]:
        """Infer shapes through a list of layer statements. A broken layer makes the shape unknown."""
        out: list[ir.Layer] = []
        over_limit, total = _first_over_layer_limit(nodes) if top else (None, 0)
        for node in nodes:
            if node is over_limit:
                self.report_too_many_layers(node, total)
                shape = None  # the rest is bound and checked once, never expanded
            if isinstance(node, n.Broken):
                shape, self.counted, self.at_input = None, False, self.at_input and None
                continue
            if not top and reg.lookup("layer", node.keyword) is None:
                self.counted = False
                if id(node) not in self.bound_layers:
                    self.bound_layers[id(node)] = _Bound(node, {}, False)
                    if reg.lookup("statement", node.keyword) and not node.layer_prefix:
                        self.report(m.SETTING_IN_BLOCK.at(node.keyword_span, keyword=node.keyword))
                    else:
                        self.report_unknown_statement(node, in_block=True)
                shape = None
                continue
            if top and reg.lookup("layer", node.keyword) is None:
                # unknown statement, already reported
                shape, self.counted, self.at_input = None, False, self.at_input and None
                continue
            layer, shape = self.check_layer(node, shape)
            if layer is not None:
                out.append(layer)
        return out, shape

    def report_too_many_layers(self, node: n.Statement, total: int) -> None:
        if node.block is None:
            self.report(m.TOO_MANY_LAYERS.at(node.span, total=total, limit=MAX_LAYERS))
        else:
            self.report(m.TOO_MANY_REPEATED_LAYERS.at(node.keyword_span, total=total, limit=MAX_LAYERS))

    def check_layer(self, node: n.Statement, shape: tuple[int, ...] | None) -> tuple[ir.Layer | None, Any]:
        entry = reg.layer(node.keyword)
        bound = self.bound_layers.get(id(node))
        if bound is None:  # bind once, even when a repeat visits the statement many times
            bound = self.bind(node, entry.params + reg.LAYER_COMMON)
            self.bound_layers[id(node)] = bound
            if entry.block and node.block is None:
                self.report(m.BLOCK_NEEDED.at(node.keyword_span, keyword=node.keyword, example=entry.example))
                bound.ok = False
            elif not entry.block and node.block is not None:
                self.report(m.NO_BLOCK_TAKEN.at(node.keyword_span, keyword=node.keyword))
                bound.ok = False
            if bound.args.get("trainable") is False and not _learns(node):
                self.report(m.NOTHING_TO_FREEZE.at(node.option("trainable").span, keyword=node.keyword))
        name = self.name_layer(node, entry, bound)
        self.layer_spans.setdefault(name, node.span if node.block is None else node.keyword_span)
        args = {k: v for k, v in bound.args.items() if k != "name"}
        if self.frozen:  # inside a frozen block
            args["trainable"] = False
        if entry.block:
            return self.check_block(node, entry, bound, shape, name, args)
        if not self.takes_input(node, entry, bound):
            return None, None
        if not bound.ok or shape is None:
            return (ir.Layer(entry.name, name, args, shape, None, None, node.span.line, frozen_params=None)
                    if bound.ok else None), None
        try:
            output = entry.shape(shape, bound.args)
        except ShapeError as e:  # worded by the layer's shape rule
            self.report(error(e.code, node.span, e.message, e.hint))
            return None, None
        if any(d < 1 for d in output):
            self.report(m.SHRINKS.at(node.span, keyword=node.keyword, shape=show_shape(shape),
                                     output=show_shape(output)))
            return None, None
        if output[-1] == 1 and self.report_constant_activation(node, entry, bound):
            return None, None
        if entry.settling is not None:
            self.warn_unsettled(node, entry.settling(bound.args))
        count = entry.count(shape, bound.args)
        frozen = count if args["trainable"] is False else 0
        return ir.Layer(entry.name, name, args, shape, output, count - frozen, node.span.line,
                        frozen_params=frozen), output

    def takes_input(self, node: n.Statement, entry: reg.Layer, bound: _Bound) -> bool:
        """Whether the layer can take what comes into it as far as token ids go (False when not: it
        was reported, once per statement however many times a `repeat` visits it)."""
        first, self.at_input = self.at_input, False
        problem = None if first is None else self.token_problem(node, entry, bound, first)
        if problem is not None and id(node) not in self.token_reported:
            self.token_reported = self.token_reported | {id(node)}
            self.report(problem)
        if first and entry.takes_tokens is not None:
            self.report_normalized_ids(node)
        return problem is None

    def report_normalized_ids(self, node: n.Statement) -> None:
        """E607 at `normalize=` when the model's first layer takes token ids from an NPZ's `x` or
        arrays given to `fit`: ids are indices, and scaled ones would index the wrong vectors. (Data of
        numbers there is E407; a CSV's text column is refused at its `data` statement.)"""
        data = self.data
        if data is None or data.source not in ("npz", "arrays") or data.normalize == "none":
            return
        bound = self.settings.get("data")
        option = bound.statement.option("normalize") if bound else None
        # Without the option the value came with recorded facts (a run folder's): the layer is the place.
        span = option.value.span if option else node.span
        labels = (Label(node.span, m.TAKES_IDS_HERE),) if option else ()
        self.report(m.IDS_NORMALIZED.at(span, normalize=data.normalize, keyword=node.keyword, labels=labels))

    def token_problem(self, node: n.Statement, entry: reg.Layer, bound: _Bound, first: bool) -> Diagnostic | None:
        """Token ids go into the first layer only, which must take them (E407), and only ids it has
        vectors for (E408); a layer that takes them takes nothing else."""
        data, takes = self.data, entry.takes_tokens
        if takes is None:
            if first and data is not None and data.tokens:
                return m.TOKENS_NEED_EMBEDDING.at(node.span, keyword=node.keyword, data=data.name, vocab=data.vocab)
            return None
        if not first:
            return m.EMBEDDING_NOT_FIRST.at(node.span, keyword=node.keyword)
        if data is not None and not data.tokens and data.source in ("builtin", "csv"):
            return m.EMBEDDING_ON_NUMBERS.at(node.span, keyword=node.keyword, data=data.name)
        if self.float_x is not None:
            name, dtype = self.float_x
            return m.EMBEDDING_ON_FLOATS.at(node.span, keyword=node.keyword, name=name, data=data.name, dtype=dtype)
        if bound.ok and data is not None and data.tokens and data.vocab and takes(bound.args) < data.vocab:
            return m.VOCAB_TOO_SMALL.at(node.span, keyword=node.keyword, vocab=takes(bound.args), data=data.name,
                                        last=data.vocab - 1, given=data.vocab)
        return None

    def name_layer(self, node: n.Statement, entry: reg.Layer, bound: _Bound) -> str:
        """The layer's name: its `name=` with the copy numbers of the enclosing `repeat` blocks
        appended, or its kind and its index among the layers of that kind. E310 at both layers
        when an earlier one has the same name."""
        self.kind_counts[entry.name] += 1
        given = bound.args.get("name")
        if given is _UNKNOWN:
            return ""
        how = ""
        if given is None:
            name, span = f"{entry.name}_{self.kind_counts[entry.name]}", node.span if node.block is None \
                else node.keyword_span
            how = m.NAMED_BY_KIND
        else:
            name, span = given + "".join(f"_{i}" for i in self.copies), node.option("name").value.span
            if self.copies:
                how = m.NAMED_PER_COPY.format(given=given)
        sure = given is not None or self.counted
        first, first_sure, first_how = self.names.setdefault(name, (span, sure, how))
        if first is not span and sure and first_sure:
            self.report_duplicate_name(name, span, first, how or first_how)
            self.report_duplicate_name(name, first, span, first_how or how)
        return name

    def report_duplicate_name(self, name: str, span: n.Span, other: n.Span, how: str) -> None:
        if span.start in self.reported_names:
            return
        self.reported_names.add(span.start)
        self.report(m.DUPLICATE_NAME.at(span, name=name, labels=(Label(other, m.ALSO_NAMED_HERE),),
                                        hint=m.NAMING_THEN_ANOTHER_NAME.format(how=how) if how else None))

    def training_steps(self) -> tuple[int, int, int] | None:
        """(steps, epochs, batches per epoch) of the run at most, when the number of training
        examples is known: built-in data, or any data once loaded. Held-out parts are cut as
        `runtime.data` cuts them."""
        data = self.data
        if data is None or data.examples is None:
            return None
        held = sum(max(1, round(f * data.examples)) for f in (data.val, data.test) if f > 0)
        train = max(data.examples - held, 1)
        epochs = self.setting("epochs").args["count"] if self.setting("epochs") else 10
        batch = self.setting("batch").args["size"] if self.setting("batch") else 32
        batches = -(-train // min(batch, train))
        return epochs * batches, epochs, batches

    def warn_unsettled(self, node: n.Statement, needed: int) -> None:
        """W104 once per statement (a `repeat` visits it once per copy): running statistics that
        need more steps to settle than the run has, so evaluation would use unsettled ones."""
        run = self.training_steps()
        if run is None or run[0] >= needed or id(node) in self.warned_unsettled:
            return
        self.warned_unsettled.add(id(node))
        steps, epochs, batches = run
        fits = math.floor(100 * 0.01 ** (1 / steps)) / 100  # a momentum whose start weighs < 1% after `steps`
        lower = m.LOWER_MOMENTUM.format(momentum=fits, steps=m.STEPS.of(steps)) if fits > 0 else ""
        self.report(m.UNSETTLED.at(node.span, keyword=node.keyword, needed=needed, steps=steps,
                                   epochs=m.EPOCHS.of(epochs), batches=m.BATCHES.of(batches), lower=lower))

    def report_constant_activation(self, node: n.Statement, entry: reg.Layer, bound: _Bound) -> bool:
        """E405 for an activation that sums to 1 over the last axis (softmax) applied to one unit:
        its output is the constant 1, whatever the loss. True when reported."""
        for slot, value in zip([p for p in entry.params if p.positional], node.positionals, strict=False):
            name = bound.args.get(slot.name)
            if slot.table == "activation" and isinstance(name, str) and reg.lookup("activation", name).sums_to_one:
                self.report(m.CONSTANT_OUTPUT.at(value.span, name=name))
                return True
        return False

    def check_block(self, node: n.Statement, entry: reg.Layer, bound: _Bound, shape: tuple[int, ...] | None,
                    name: str, args: dict) -> tuple[ir.Layer | None, Any]:
        outer = self.frozen
        self.frozen = args.get("trainable") is False
        try:
            body, out = self.check_body(node, entry, bound, shape)
        finally:
            self.frozen = outer
        if not bound.ok or shape is None or out is None:
            return None, None
        params = sum(layer.params or 0 for layer in body)
        frozen = sum(layer.frozen_params or 0 for layer in body)
        return ir.Layer(entry.name, name, args, shape, out, params, node.span.line, tuple(body), frozen), out

    def check_body(self, node: n.Statement, entry: reg.Layer, bound: _Bound,
                   shape: tuple[int, ...] | None) -> tuple[list[ir.Layer], Any]:
        """The layers of a block and its output shape (None: unknown, or a skip that changes it)."""
        body_nodes = list(node.block or ())
        if entry.skip:
            body, out = self.check_layers(body_nodes, shape)
            if shape is not None and out is not None and out != shape:
                fix = m.END_BLOCK_WITH.format(shape=show_shape(shape), units=shape[0]) if len(shape) == 1 else None
                self.report(m.BLOCK_CHANGES_SHAPE.at(node.keyword_span, hint=fix, block=entry.name,
                                                     shape=show_shape(shape), output=show_shape(out)))
                return body, None
        else:
            times = bound.args.get(entry.copies) if entry.copies else 1
            body, out = [], shape
            for copy in range(times if bound.ok else 1):
                copies = self.copies
                self.copies = copies + [copy + 1] if entry.copies else copies
                layers, out = self.check_layers(body_nodes, out)
                self.copies = copies
                body.extend(layers)
                if out is None:
                    self.counted &= copy + 1 == times
                    break
            self.counted &= bound.ok
        return body, out


def _learns(node: n.Statement) -> bool:
    """Whether a layer statement has parameters, of its own or in the layers of its block."""
    entry = reg.lookup("layer", node.keyword)
    return entry is not None and (entry.learns or any(_learns(child) for child in node.block or ()
                                                      if isinstance(child, n.Statement)))


def _layer_count(node: n.Node) -> int:
    """How many layers a statement becomes once `repeat` blocks are expanded; a block counts as one
    too. Only known layers count: anything else was reported where it is."""
    entry = reg.lookup("layer", node.keyword) if isinstance(node, n.Statement) else None
    if entry is None:
        return 0
    if node.block is None:
        return 1
    body = sum(_layer_count(child) for child in node.block)
    times = dict(zip([p.name for p in entry.positionals], node.positionals)).get(entry.copies)
    in_range = isinstance(times, n.Int) and entry.param(entry.copies).range.contains(times.value)
    return 1 + (times.value if in_range else 1) * body


def _first_over_layer_limit(nodes: list[n.Node]) -> tuple[n.Node | None, int]:
    """The first statement that takes the model past MAX_LAYERS, if any, and the model's layer count."""
    total, first = 0, None
    for node in nodes:
        total += _layer_count(node)
        if first is None and total > MAX_LAYERS:
            first = node
    return first, total

