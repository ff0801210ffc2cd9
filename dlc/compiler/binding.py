"""Binding a statement's values to its registry entry's parameters: types, ranges, defaults and
names resolved, with one error per value that does not fit. A stage of the checker (`check.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlc.compiler import registry as reg
from dlc.compiler.diagnostics import Label, error
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
                hint = f"`{node.keyword}` is a setting: write it outside blocks, without `layer`"
            self.report(error("E201", node.keyword_span, f"unknown layer `{node.keyword}`",
                              hint or f"layers are {', '.join(f'`{x}`' for x in reg.names('layer'))}"))
        else:
            hint = did_you_mean(node.keyword, reg.names("statement") + reg.names("layer") + ["layer"],
                                _SYNONYM_STATEMENTS)
            self.report(error("E200", node.keyword_span, f"unknown statement `{node.keyword}`",
                              hint or "run `dlc explain E200` for the list of statements"))

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
                self.report(error("E303", value.span, f"`{node.keyword}` takes {self.count_words(slots)}; "
                                  f"`{self.source(value)}` is one too many", self.usage(node, slots)))
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
                self.report(error("E305", opt.span, f"option `{opt.name}` is given twice",
                                  "remove one of them", (Label(seen[opt.name].span, "first given here"),)))
                ok = False
                continue
            seen[opt.name] = opt
            param = by_name.get(opt.name)
            if param is None:
                self.report_unknown_option(node, opt, by_name, slots)
                ok = False
                continue
            converted = self.convert(opt.value, param, f"`{opt.name}`", f"`{opt.name}`: {param.doc}")
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
    def count_words(slots: list[Param]) -> str:
        if not slots:
            return "no positional values"
        return f"at most {len(slots)} positional value{'s' * (len(slots) != 1)}"

    @staticmethod
    def describe_positional(node: n.Statement, slots: list[Param], slot: Param) -> tuple[str, str | None]:
        """How messages name a positional value, and the hint that says what it is. A setting's only
        value is named by the setting (`epochs`), others by the slot too (`dense` units)."""
        if len(slots) == 1 and reg.lookup("statement", node.keyword) is not None:
            return f"`{node.keyword}`", None
        return f"`{node.keyword}` {slot.name}", f"`{slot.name}`: {slot.doc}"

    @staticmethod
    def usage(node: n.Statement, slots: list[Param]) -> str:
        """The statement's form, `dense UNITS [ACTIVATION]`, with its registry example."""
        words = [node.keyword]
        for p in slots:
            word = p.name.upper() + ("..." if p.variadic else "")
            words.append(word if p.required else f"[{word}]")
        entry = reg.lookup("layer", node.keyword) or reg.lookup("statement", node.keyword)
        form = " ".join(words)
        example = f", as in `{entry.example}`" if entry and entry.example and entry.example != form else ""
        return f"the form is `{form}`{example}"

    def report_missing(self, node: n.Statement, slot: Param) -> None:
        entry = reg.lookup("layer", node.keyword) or reg.lookup("statement", node.keyword)
        self.report(error("E302", node.span if node.block is None else node.keyword_span,
                          f"`{node.keyword}` needs `{slot.name}`: {slot.doc}",
                          f"for example `{entry.example}`" if entry and entry.example else None))

    def report_unknown_option(self, node: n.Statement, opt: n.Option, known: dict[str, Param],
                              slots: list[Param]) -> None:
        owner = f"`{node.keyword}`"
        if any(p.name == opt.name for p in slots):  # `early_stop patience=3`
            self.report(error("E202", opt.name_span, f"{owner} has no option `{opt.name}`",
                              f"`{opt.name}` is a positional value, written without its name: "
                              + self.usage(node, slots).removeprefix("the form is ")))
            return
        setting = reg.lookup("statement", node.keyword)
        if isinstance(setting, reg.Setting) and setting.selects and node.positionals \
                and isinstance(node.positionals[0], n.Name):
            owner = f"`{node.positionals[0].value}`"
            # An option that belongs to a sibling entry (adam's `momentum`) says whose it is.
            owners = [f"`{e.name}`" for e in reg.TABLES[setting.selects] if e.param(opt.name)]
            if owners:
                self.report(error("E202", opt.name_span, f"{owner} has no option `{opt.name}`",
                                  f"`{opt.name}` is an option of {_and(owners)}; "
                                  f"{owner} takes {self.option_list(known)}"))
                return
        synonyms = {s: p.name for p in known.values() for s in p.synonyms}
        hint = did_you_mean(opt.name, known, synonyms)
        self.report(error("E202", opt.name_span, f"{owner} has no option `{opt.name}`",
                          hint or (f"{owner} takes {self.option_list(known)}" if known else f"{owner} takes no options")))

    @staticmethod
    def option_list(known: dict[str, Param]) -> str:
        return ", ".join(f"`{k}=`" for k in known) if known else "no options"

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
        `what` names the value in messages; `doc`, the hint of a range error, says what it means."""
        if self.holds_syntax_error(value):
            return _UNKNOWN
        if isinstance(value, n.List):
            self.report(error("E306", value.span, "sweeps (lists of values) are not supported yet",
                              "give one value; run one spec per value until sweeps arrive"))
            return _UNKNOWN
        if not self.fits(value, p):
            got = {n.Int: "an integer", n.Float: "a number", n.Bool: "a boolean", n.Name: "a name",
                   n.Str: "a string", n.Shape: "a shape"}[type(value)]
            hint = None
            if p.kind == "int" and isinstance(value, n.Float):
                hint = f"write a whole number, like `{max(1, round(value.value))}`"
            elif p.kind in ("float", "int") and isinstance(value, n.Str):
                hint = "numbers are written without quotes, like `0.5`"
            elif p.kind == "string" and isinstance(value, n.Name):
                hint = f'put it in double quotes: `"{value.value}"`'
            elif isinstance(value, n.Str) and value.value.isidentifier():
                hint = f"write it without quotes: `{value.value}`"
            expected = _or([f"`{c}`" for c in p.choices]) if p.kind == "choice" else KINDS[p.kind]
            self.report(error("E300", value.span,
                              f"{what} must be {expected}, got {got} `{self.source(value)}`", hint))
            return _UNKNOWN
        if p.kind in ("choice", "ref"):
            return self.resolve_name(value, p, what)
        if p.kind == "source" and isinstance(value, n.Name):
            return self.resolve_name(value, Param(p.name, "ref", p.doc, table="dataset"), what)
        if isinstance(value, n.Shape):
            if p.kind == "size" and len(value.dims) != 2:
                self.report(error("E300", value.span, f"{what} must have two sides, got `{self.source(value)}`",
                                  "write it as HxW, like `3x3`, or one integer for a square"))
                return _UNKNOWN
            if p.range and not all(p.range.contains(d) for d in value.dims):
                self.report(error("E301", value.span, f"{what} must be {p.range.describe()} on every side, "
                                  f"got {self.source(value)}", doc))
                return _UNKNOWN
            if self.too_large(value, max(value.dims), p, what):
                return _UNKNOWN
            return value.dims
        raw = value.value  # type: ignore[attr-defined]
        if p.range and isinstance(raw, (int, float)) and not isinstance(raw, bool) and not p.range.contains(raw):
            self.report(error("E301", value.span, f"{what} must be {p.range.describe()}, got {self.source(value)}",
                              doc))
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
        shown = self.source(value)
        shown = shown if len(shown) <= 40 else f"{shown[:30]}...{shown[-7:]}"
        self.report(error("E301", value.span, f"{what} must be ≤ {MAX_INT}, got {shown}",
                          "counts and sizes go up to 2^31 - 1; no model needs more"))
        return True

    def resolve_name(self, value: n.Value, p: Param, what: str) -> Any:
        name = value.value  # type: ignore[attr-defined]
        if p.kind == "choice":
            if name in p.choices:
                return name
            hint = did_you_mean(name, p.choices) or f"choose one of {', '.join(f'`{c}`' for c in p.choices)}"
            self.report(error("E203", value.span, f"unknown value `{name}` for {what}", hint))
            return _UNKNOWN
        entry = reg.lookup(p.table, name)
        if entry is not None:
            return entry.name
        hint = did_you_mean(name, reg.names(p.table)) or \
            f"{p.table}s are {', '.join(f'`{e.name}`' for e in reg.TABLES[p.table])}"
        self.report(error("E203", value.span, f"unknown {p.table} `{name}`", hint))
        return _UNKNOWN


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
