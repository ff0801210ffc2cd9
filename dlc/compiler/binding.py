"""Binding a statement's values to its registry entry's parameters: types, ranges, defaults and
names resolved, with one error per value that does not fit. A stage of the checker (`check.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.diagnostics import Label
from dlc.compiler.registry import KINDS, Param
from dlc.compiler.suggest import did_you_mean
from dlc.grammar import nodes as n

_UNKNOWN = object()  # a value that failed its check: rules that need it stay silent
# The largest count or size a spec may give: JAX computes with 32-bit integers, and no model needs more.
MAX_INT = 2**31 - 1
_SYNONYM_STATEMENTS = {"optimiser": "optimizer", "layers": "layer", "epoch": "epochs", "batch_size": "batch",
                       "metric": "metrics", "early_stopping": "early_stop", "dataset": "data", "random_seed": "seed"}


@dataclass
class _Bound:
    """A statement's values bound to its parameters. `ok` is False when any value was wrong."""

    statement: n.Statement
    args: dict[str, Any]
    ok: bool


class BindingStage:
    """Binding values to parameters, and reporting unknown statements and options."""

    def report_unknown_statement(self, node: n.Statement, in_block: bool) -> None:
        if node.layer_prefix or in_block:
            hint = did_you_mean(node.keyword, reg.names("layer"))
            if not hint and reg.lookup("statement", node.keyword):
                hint = m.SETTING_AS_LAYER.format(keyword=node.keyword)
            self.report(m.UNKNOWN_LAYER.at(node.keyword_span, hint=hint, keyword=node.keyword,
                                           layers=m.quoted(reg.names("layer"))))
        else:
            hint = did_you_mean(node.keyword, reg.names("statement") + reg.names("layer") + ["layer"],
                                _SYNONYM_STATEMENTS)
            self.report(m.UNKNOWN_STATEMENT.at(node.keyword_span, hint=hint, keyword=node.keyword))

    # --- binding values to parameters ----------------------------------------------------

    def bind(self, node: n.Statement, params: tuple[Param, ...]) -> _Bound:
        """Bind positionals in order and options by name; check types and ranges; fill defaults."""
        args: dict[str, Any] = {}
        ok = True
        slots = [p for p in params if p.positional]
        values = list(node.positionals)
        i = 0
        for value in values:
            if i >= len(slots):
                takes = m.POSITIONALS.of(len(slots))
                self.report(m.TOO_MANY_POSITIONALS.at(value.span, keyword=node.keyword, takes=takes,
                                                      source=self.source(value), usage=self.usage(node, slots)))
                ok = False
                continue
            slot = slots[i]
            if slot.variadic:
                converted = self.convert(value, slot, *self.describe_positional(node, slots, slot))
                args.setdefault(slot.name, []).append(converted)
                ok &= converted is not _UNKNOWN
                continue
            if slot.required and not self.fits(value, slot):
                later = next((j for j in range(i + 1, len(slots)) if self.fits(value, slots[j])), None)
                if later is not None:
                    self.report_missing(node, slot)
                    ok = False
                    i = later
                    slot = slots[i]
            converted = self.convert(value, slot, *self.describe_positional(node, slots, slot))
            args[slot.name] = converted
            ok &= converted is not _UNKNOWN
            i += 1
        for slot in slots[i:]:
            if slot.variadic and slot.name in args:
                continue
            if slot.required:
                ok = False
                if node.option(slot.name) is None:  # `early_stop patience=3` is reported as an option
                    self.report_missing(node, slot)
                break  # one missing piece is one error
        seen: dict[str, n.Option] = {}
        by_name = {p.name: p for p in params if not p.positional}
        for opt in node.options:
            if opt.name in seen:
                self.report(m.OPTION_TWICE.at(opt.span, option=opt.name,
                                              labels=(Label(seen[opt.name].span, m.FIRST_GIVEN_HERE),)))
                ok = False
                continue
            seen[opt.name] = opt
            param = by_name.get(opt.name)
            if param is None:
                self.report_unknown_option(node, opt, by_name, slots)
                ok = False
                continue
            converted = self.convert(opt.value, param, m.OPTION_VALUE.format(option=opt.name),
                                     m.PARAMETER_DOC.format(name=opt.name, doc=param.doc))
            args[opt.name] = converted
            ok &= converted is not _UNKNOWN
        for p in params:
            if p.name not in args and not p.required:
                args[p.name] = p.default
        if "names" in args and isinstance(args["names"], list):
            args["names"] = tuple(args["names"])
        return _Bound(node, args, ok)

    def source(self, value: n.Value) -> str:
        return self.spec.source[value.span.start:value.span.end]

    @staticmethod
    def describe_positional(node: n.Statement, slots: list[Param], slot: Param) -> tuple[str, str | None]:
        """How messages name a positional value, and the hint that says what it is. A setting's only
        value is named by the setting (`epochs`), others by the slot too (`dense` units)."""
        if len(slots) == 1 and reg.lookup("statement", node.keyword) is not None:
            return m.SETTING_VALUE.format(keyword=node.keyword), None
        return m.POSITIONAL_VALUE.format(keyword=node.keyword, slot=slot.name), \
            m.PARAMETER_DOC.format(name=slot.name, doc=slot.doc)

    @staticmethod
    def usage(node: n.Statement, slots: list[Param]) -> str:
        """The statement's form, `dense UNITS [ACTIVATION]`, with its registry example."""
        words = [node.keyword]
        for p in slots:
            word = p.name.upper() + ("..." if p.variadic else "")
            words.append(word if p.required else f"[{word}]")
        entry = reg.lookup("layer", node.keyword) or reg.lookup("statement", node.keyword)
        form = " ".join(words)
        if entry and entry.example and entry.example != form:
            return m.USAGE_WITH_EXAMPLE.format(form=form, example=entry.example)
        return m.USAGE.format(form=form)

    def report_missing(self, node: n.Statement, slot: Param) -> None:
        entry = reg.lookup("layer", node.keyword) or reg.lookup("statement", node.keyword)
        example = m.FOR_EXAMPLE.format(example=entry.example) if entry and entry.example else None
        self.report(m.MISSING_POSITIONAL.at(node.span if node.block is None else node.keyword_span, hint=example,
                                            keyword=node.keyword, slot=slot.name, doc=slot.doc))

    def report_unknown_option(self, node: n.Statement, opt: n.Option, known: dict[str, Param],
                              slots: list[Param]) -> None:
        """E202, with the likeliest reason for its hint: a positional value given by name, an option of
        another entry (adam's `momentum`), a misspelling; else the options the statement takes."""
        owner, hint = node.keyword, None
        setting = reg.lookup("statement", node.keyword)
        if any(p.name == opt.name for p in slots):  # `early_stop patience=3`
            hint = m.OPTION_IS_POSITIONAL.format(option=opt.name, usage=self.usage(node, slots))
        elif isinstance(setting, reg.Setting) and setting.selects and node.positionals \
                and isinstance(node.positionals[0], n.Name):
            owner = node.positionals[0].value
            owners = [e.name for e in reg.TABLES[setting.selects] if e.param(opt.name)]
            if owners:
                hint = m.OPTION_OF_OTHERS.format(option=opt.name, owners=m.all_of(owners), owner=owner,
                                                 options=m.options(known))
        hint = hint or did_you_mean(opt.name, known, {s: p.name for p in known.values() for s in p.synonyms})
        self.report(m.UNKNOWN_OPTION.at(opt.name_span, hint=hint, owner=owner, option=opt.name,
                                        options=m.options(known)))

    @staticmethod
    def fits(value: n.Value, p: Param) -> bool:
        """Whether a value has the right type for a parameter (ignoring its range)."""
        kind = p.kind
        if isinstance(value, n.List):
            return True
        return {
            "int": isinstance(value, n.Int),
            "float": isinstance(value, (n.Int, n.Float)),
            "bool": isinstance(value, n.Bool),
            "name": isinstance(value, n.Name),
            "string": isinstance(value, n.Str),
            "shape": isinstance(value, (n.Int, n.Shape)),
            "size": isinstance(value, (n.Int, n.Shape)),
            "choice": isinstance(value, n.Name),
            "ref": isinstance(value, n.Name),
            "source": isinstance(value, (n.Name, n.Str)),
        }[kind]

    def convert(self, value: n.Value, p: Param, what: str, doc: str | None) -> Any:
        """The Python value of `value` for parameter `p`, or _UNKNOWN after reporting why not.
        `what` names the value in messages; `doc`, the hint of a range error, says what it means.
        Kept by the value's node too, with `p`: a sweep's axes take their values and names from it."""
        converted = self.checked_value(value, p, what, doc)
        self.bound_values[id(value)] = (p, converted)
        return converted

    def checked_value(self, value: n.Value, p: Param, what: str, doc: str | None) -> Any:
        if self.holds_syntax_error(value):
            return _UNKNOWN
        if isinstance(value, n.List):  # an empty one: a sweep member holds an element of every other list
            self.report(m.EMPTY_LIST.at(value.span))
            return _UNKNOWN
        if not self.fits(value, p):
            hint = None
            if p.kind == "int" and isinstance(value, n.Float):
                hint = m.WHOLE_NUMBER.format(example=max(1, round(value.value)))
            elif p.kind in ("float", "int") and isinstance(value, n.Str):
                hint = m.NUMBER_IN_QUOTES
            elif p.kind == "string" and isinstance(value, n.Name):
                hint = m.STRING_WITHOUT_QUOTES.format(name=value.value)
            elif isinstance(value, n.Str) and value.value.isidentifier():
                hint = m.NAME_IN_QUOTES.format(name=value.value)
            expected = m.one_of(p.choices) if p.kind == "choice" else KINDS[p.kind]
            self.report(m.WRONG_TYPE.at(value.span, hint=hint, what=what, expected=expected,
                                        got=m.GOT[type(value)], source=self.source(value)))
            return _UNKNOWN
        if p.kind in ("choice", "ref"):
            return self.resolve_name(value, p, what)
        if p.kind == "source" and isinstance(value, n.Name):
            return self.resolve_name(value, Param(p.name, "ref", p.doc, table="dataset"), what)
        if isinstance(value, n.Shape):
            if p.kind == "size" and len(value.dims) != 2:
                self.report(m.NOT_TWO_SIDES.at(value.span, what=what, source=self.source(value)))
                return _UNKNOWN
            if p.range and not all(p.range.contains(d) for d in value.dims):
                self.report(m.SIDE_OUT_OF_RANGE.at(value.span, hint=doc, what=what, range=p.range.describe(),
                                                   source=self.source(value)))
                return _UNKNOWN
            if self.too_large(value, max(value.dims), p, what):
                return _UNKNOWN
            return value.dims
        raw = value.value  # type: ignore[attr-defined]
        if p.range and isinstance(raw, (int, float)) and not isinstance(raw, bool) and not p.range.contains(raw):
            self.report(m.OUT_OF_RANGE.at(value.span, hint=doc, what=what, range=p.range.describe(),
                                          source=self.source(value)))
            return _UNKNOWN
        if isinstance(value, n.Int) and self.too_large(value, raw, p, what):
            return _UNKNOWN
        if p.kind == "float":
            return float(raw)
        if p.kind == "shape":
            return (raw,)
        return raw

    def too_large(self, value: n.Value, number: int, p: Param, what: str) -> bool:
        """Report a count or size above MAX_INT, where the parameter's own range has no upper end."""
        if number <= MAX_INT or (p.range is not None and p.range.hi is not None):
            return False
        self.report(m.COUNT_TOO_LARGE.at(value.span, what=what, limit=MAX_INT, source=m.abridged(self.source(value))))
        return True

    def resolve_name(self, value: n.Value, p: Param, what: str) -> Any:
        name = value.value  # type: ignore[attr-defined]
        if p.kind == "choice":
            if name in p.choices:
                return name
            self.report(m.UNKNOWN_CHOICE.at(value.span, hint=did_you_mean(name, p.choices), name=name, what=what,
                                            choices=m.quoted(p.choices)))
            return _UNKNOWN
        entry = reg.lookup(p.table, name)
        if entry is not None:
            return entry.name
        self.report(m.UNKNOWN_NAME.at(value.span, hint=did_you_mean(name, reg.names(p.table)), table=p.table,
                                      name=name, names=m.quoted(e.name for e in reg.TABLES[p.table])))
        return _UNKNOWN
