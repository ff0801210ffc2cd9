"""AST to checked IR. Every rule of the language, every error in one pass, one error per cause.

The checker binds each statement's values to its registry entry's parameters (types,
ranges, defaults), infers shapes layer by layer through nested blocks, and relates the
output to the loss and the data. A piece that is broken (a syntax error, an unknown name,
a bad value, a shape that does not fit) makes what depends on it unknown, so later rules
stay silent about it instead of blaming the wrong line.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.datafacts import NOT_FOUND, DataFactError, FileFacts, csv_facts, data_file_problem, npz_facts
from dlc.compiler.diagnostics import (
    MAX_DIAGNOSTICS,
    Diagnostic,
    Label,
    error,
    file_span,
    is_whole_file,
    sort_key,
    stopped,
    warning,
)
from dlc.compiler.registry import KINDS, Param, ShapeError, show_shape
from dlc.compiler.suggest import closest, did_you_mean
from dlc.grammar import nodes as n

_UNKNOWN = object()  # a value that failed its check: rules that need it stay silent
# The largest count or size a spec may give: JAX computes with 32-bit integers, and no model needs more.
MAX_INT = 2**31 - 1
# How many layers a model may have once `repeat` blocks are expanded: ten times the deepest networks
# in use (ResNet-1001), and few enough that checking and building the model stay fast.
MAX_LAYERS = 10_000
_SYNONYM_STATEMENTS = {"optimiser": "optimizer", "layers": "layer", "epoch": "epochs", "batch_size": "batch",
                       "metric": "metrics", "early_stopping": "early_stop", "dataset": "data", "random_seed": "seed"}


def check(spec: n.Spec, base_dir: Path | None = None, extra: list[Diagnostic] | None = None, *,
          arrays: ir.Data | None = None, training: bool = False) -> tuple[ir.Program | None, list[Diagnostic]]:
    """Check a parsed spec. Returns the IR (None when there is any error) and all diagnostics.

    `base_dir` resolves relative data paths (the spec file's folder; default the working directory).
    `extra` holds diagnostics from earlier stages (syntax errors), merged in source order.
    `arrays` holds the facts of data as loaded (arrays given to `fit`, or the spec's `data` once
    read, with its classes counted): they take the place of what the spec's `data` tells.
    `training`: the program is about to train, so a missing loss or optimizer is an error.
    Past MAX_DIAGNOSTICS, checking stops, and a last diagnostic says so.
    """
    if len(extra or []) > MAX_DIAGNOSTICS:  # the parser stopped: what it made of the text is no spec
        return None, sorted(extra or [], key=sort_key)
    checker = _Checker(spec, base_dir or Path.cwd(), arrays, training, [d.span for d in extra or [] if d.is_error])
    try:
        program = checker.run()
    except _TooMany:
        program = None
        checker.diagnostics.append(stopped(file_span(spec.path), "errors"))
    diagnostics = sorted((extra or []) + checker.diagnostics, key=sort_key)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    return program, diagnostics


class _TooMany(Exception):
    """The file has more diagnostics than are shown."""


@dataclass
class _Bound:
    """A statement's values bound to its parameters. `ok` is False when any value was wrong."""

    statement: n.Statement
    args: dict[str, Any]
    ok: bool


class _Checker:
    def __init__(self, spec: n.Spec, base_dir: Path, arrays: ir.Data | None = None, training: bool = False,
                 syntax_errors: list[n.Span] | None = None):
        self.spec = spec
        self.syntax_errors = syntax_errors or []
        self.base_dir = base_dir
        self.arrays = arrays
        self.training = training
        self.diagnostics: list[Diagnostic] = []
        self.settings: dict[str, _Bound | None] = {}  # None: present but broken
        # Settings that a misspelled statement (`optimiser`) most likely meant: not reported missing,
        # and not a first occurrence that the real statement would repeat.
        self.misspelled: set[str] = set()
        self.layers: list[n.Node] = []
        self.bound_layers: dict[int, _Bound] = {}
        self.warned_unsettled: set[int] = set()  # statements W104 was reported at
        # Naming layers: how many of each kind came so far in the expanded model, the copy numbers of
        # the enclosing `repeat` blocks (outermost first), and where each name was given first.
        # `counted` turns False once a layer may have gone uncounted (a broken statement, a `repeat`
        # not expanded), so a default name after it may be wrong and is never called a duplicate.
        self.kind_counts: Counter[str] = Counter()
        self.copies: list[int] = []
        self.names: dict[str, tuple[n.Span, bool, str]] = {}  # and whether it is sure, and how it was made
        self.counted = True
        self.reported_names: set[int] = set()  # spans E310 was reported at, by start offset
        self.data: ir.Data | None = None
        self.file_start = file_span(spec.path)

    def report(self, d: Diagnostic) -> None:
        """Collect `d`, or stop checking when the file has as many diagnostics as are shown, its syntax
        errors among them: what is not shown is not worth finding."""
        if len(self.syntax_errors) + len(self.diagnostics) >= MAX_DIAGNOSTICS:
            raise _TooMany
        self.diagnostics.append(d)

    def holds_syntax_error(self, value: n.Value) -> bool:
        """Whether a syntax error lies inside the value (a bad escape in a string): it was reported
        then, and what the value means is unknown."""
        span = value.span
        return any(span.start <= e.start and e.end <= span.end for e in self.syntax_errors)

    # --- statements ----------------------------------------------------------------------

    def run(self) -> ir.Program | None:
        for node in self.spec.statements:
            self.sort_statement(node)
        data = self.data = self.check_data()
        input_shape = self.check_input(data)
        layers, output_shape = self.check_layers(self.layers, input_shape, top=True)
        return self.check_training(data, input_shape, layers, output_shape)

    def sort_statement(self, node: n.Node) -> None:
        """File a top-level statement as a setting or a layer; report unknown and repeated ones."""
        if isinstance(node, n.Broken):
            if node.keyword in self.setting_names():
                self.settings.setdefault(node.keyword, None)
            else:
                self.layers.append(node)
            return
        setting = reg.lookup("statement", node.keyword)
        if setting is not None and not node.layer_prefix:
            if node.block is not None:
                self.report(error("E307", node.keyword_span, f"`{node.keyword}` takes no block",
                                  "only `repeat` and `residual` hold a block of layers"))
            first = self.settings.get(node.keyword, _UNKNOWN)
            if first is not _UNKNOWN:
                labels = (Label(first.statement.span, "first set here"),) if first else ()
                self.report(error("E304", node.span, f"`{node.keyword}` is set twice",
                                  f"keep one `{node.keyword}` statement", labels))
                return
            self.settings[node.keyword] = self.bind(node, self.setting_params(node))
            return
        if reg.lookup("layer", node.keyword) is None:
            self.report_unknown_statement(node, in_block=False)
            suggestion = closest(node.keyword, self.setting_names(), _SYNONYM_STATEMENTS)
            if suggestion in self.setting_names() and not node.layer_prefix:
                self.misspelled.add(suggestion)
                return
        self.layers.append(node)

    @staticmethod
    def setting_names() -> list[str]:
        return reg.names("statement")

    def mentioned(self, name: str) -> bool:
        """Whether the spec has a `name` statement, even a broken or misspelled one."""
        return name in self.settings or name in self.misspelled

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

    def setting_params(self, node: n.Statement) -> tuple[Param, ...]:
        """A setting's parameters; for `loss`, `optimizer` and `schedule` also its entry's options."""
        setting = reg.lookup("statement", node.keyword)
        assert isinstance(setting, reg.Setting)
        if setting.selects and node.positionals and isinstance(node.positionals[0], n.Name):
            entry = reg.lookup(setting.selects, node.positionals[0].value)
            if entry is not None:  # the entry's own options first: they are the ones users look for
                return setting.positionals + entry.options + setting.options
        return setting.params

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

    # --- data and input --------------------------------------------------------------------

    def setting(self, name: str) -> _Bound | None:
        """A setting that is present and fully valid, else None."""
        bound = self.settings.get(name)
        return bound if bound is not None and bound.ok else None

    def check_data(self) -> ir.Data | None:
        bound = self.settings.get("data")
        if self.arrays is not None:
            return self.arrays
        if bound is None:
            return None
        a, node = bound.args, bound.statement
        source = a.get("source")
        if source is _UNKNOWN or source is None:
            return None
        val, test = a.get("val"), a.get("test")
        if isinstance(val, float) and isinstance(test, float) and val + test >= 1:
            where = node.option("test") or node.option("val")
            self.report(error("E605", where.span, f"`val={val:g}` and `test={test:g}` leave no training data",
                              "hold out less: the two fractions must add up to less than 1"))
            bound.ok = False
        value = node.positionals[0]
        if isinstance(value, n.Name):
            if node.option("target"):
                self.report(error("E202", node.option("target").name_span,
                                  f"built-in dataset `{source}` has no option `target`",
                                  "`target=` names the label column of a CSV file"))
                return None
            if not bound.ok:
                return None
            entry = reg.lookup("dataset", source)
            assert isinstance(entry, reg.Dataset)
            return ir.Data("builtin", entry.name, None, val, test, a["normalize"], a["shuffle"], None,
                           entry.features, "classification", entry.classes, None, val > 0, test > 0,
                           entry.examples)
        written = Path(source)
        path = written if written.is_absolute() else self.base_dir / written
        suffix = path.suffix.lower()
        try:
            if suffix not in (".csv", ".npz"):
                raise DataFactError("E601", f"unsupported data file `{source}`",
                                    "use a `.csv` file with a header row or a `.npz` file with arrays `x` and `y`")
            problem = data_file_problem(path)
            if problem == NOT_FOUND:
                raise DataFactError("E600", f"data file `{source}` not found", f"looked for `{path}`" + (
                    "" if written.is_absolute() else "; a relative path starts at the spec's folder"))
            if problem:
                raise DataFactError("E606", f"data file `{source}` {problem}", "name a `.csv` or `.npz` file")
            if a.get("target") is _UNKNOWN:
                return None  # a `target=` of the wrong type, already reported
            if suffix == ".csv":
                facts = csv_facts(path, a.get("target"))
            else:
                if node.option("target"):
                    raise DataFactError("E202", "an NPZ source has no option `target`",
                                        "labels are the array `y`", at="target")
                facts = npz_facts(path)
        except DataFactError as e:
            where = node.option("target") if e.at == "target" and node.option("target") else None
            span = (where.value.span if e.code != "E202" else where.name_span) if where else \
                (value.span if e.code != "E603" else node.span)
            self.report(error(e.code, span, e.message, e.hint))
            return None
        if not bound.ok:
            return None
        return self.file_data(suffix[1:], source, path, a, facts)

    @staticmethod
    def file_data(kind: str, source: str, path: Path, a: dict, facts: FileFacts) -> ir.Data:
        if facts.integer_labels:
            task = "classification"
        elif facts.integer_labels is None:
            task = "unknown"
        else:
            task = "regression" if facts.target_width == 1 else "multilabel"
        return ir.Data(kind, source, str(path), a["val"], a["test"], a["normalize"], a["shuffle"], a.get("target"),
                       facts.features, task, None, facts.target_width,
                       a["val"] > 0 or facts.has_val, a["test"] > 0 or facts.has_test)

    def check_input(self, data: ir.Data | None) -> tuple[int, ...] | None:
        bound = self.settings.get("input")
        if bound is None:
            broken_input = self.mentioned("input")
            if data is None or broken_input:
                return None
            return data.features
        if not bound.ok:
            return None
        shape = bound.args["shape"]
        if data is not None and data.features is not None:
            have, want = _prod(data.features), _prod(shape)
            if have != want:
                self.report(error("E404", bound.statement.span,
                                  f"`input {show_shape(shape)}` has {want} values per example, "
                                  f"but `{'x' if data.source == 'arrays' else data.name}` has {have}"
                                  + (f" ({show_shape(data.features)})" if len(data.features) > 1 else ""),
                                  f"use a shape with {have} values, like `input {have}`"))
                return None
        return shape

    # --- layers and shapes -----------------------------------------------------------------

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
                shape, self.counted = None, False
                continue
            if not top and reg.lookup("layer", node.keyword) is None:
                self.counted = False
                if id(node) not in self.bound_layers:
                    self.bound_layers[id(node)] = _Bound(node, {}, False)
                    if reg.lookup("statement", node.keyword) and not node.layer_prefix:
                        self.report(error("E308", node.keyword_span, f"`{node.keyword}` cannot go inside a block",
                                          "blocks hold layers; write settings at the top level"))
                    else:
                        self.report_unknown_statement(node, in_block=True)
                shape = None
                continue
            if top and reg.lookup("layer", node.keyword) is None:
                shape, self.counted = None, False  # unknown statement, already reported
                continue
            layer, shape = self.check_layer(node, shape)
            if layer is not None:
                out.append(layer)
        return out, shape

    def report_too_many_layers(self, node: n.Statement, total: int) -> None:
        if node.block is None:
            self.report(error("E309", node.span, f"the model has {total:,} layers; at most {MAX_LAYERS:,} are allowed",
                              "no network needs this many: remove layers"))
            return
        self.report(error("E309", node.keyword_span, f"the model has {total:,} layers once `repeat` blocks are "
                          f"expanded; at most {MAX_LAYERS:,} are allowed",
                          "repeat fewer times: `repeat N` makes N copies of its block, each with its own weights"))

    def check_layer(self, node: n.Statement, shape: tuple[int, ...] | None) -> tuple[ir.Layer | None, Any]:
        entry = reg.layer(node.keyword)
        bound = self.bound_layers.get(id(node))
        if bound is None:  # bind once, even when a repeat visits the statement many times
            bound = self.bind(node, entry.params + reg.LAYER_COMMON)
            self.bound_layers[id(node)] = bound
            if entry.block and node.block is None:
                self.report(error("E307", node.keyword_span, f"`{node.keyword}` needs a block of layers",
                                  f"for example `{entry.example}`"))
                bound.ok = False
            elif not entry.block and node.block is not None:
                self.report(error("E307", node.keyword_span, f"`{node.keyword}` takes no block",
                                  "only `repeat` and `residual` hold a block of layers"))
                bound.ok = False
        name = self.name_layer(node, entry, bound)
        args = {k: v for k, v in bound.args.items() if k != "name"}
        if entry.block:
            return self.check_block(node, entry, bound, shape, name)
        if not bound.ok or shape is None:
            return (ir.Layer(entry.name, name, args, shape, None, None, node.span.line) if bound.ok else None), None
        try:
            output = entry.shape(shape, bound.args)
        except ShapeError as e:
            self.report(error(e.code, node.span, e.message, e.hint))
            return None, None
        if any(d < 1 for d in output):
            self.report(error("E402", node.span, f"`{node.keyword}` would shrink its {show_shape(shape)} input "
                              f"to {show_shape(output)}", "use a smaller window or `padding=same`"))
            return None, None
        if output[-1] == 1 and self.report_constant_activation(node, entry, bound):
            return None, None
        if entry.settling is not None:
            self.warn_unsettled(node, entry.settling(bound.args))
        return ir.Layer(entry.name, name, args, shape, output, entry.count(shape, bound.args), node.span.line), output

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
            how = "a layer without `name=` is named after its kind and its index"
        else:
            name, span = given + "".join(f"_{i}" for i in self.copies), node.option("name").value.span
            if self.copies:
                how = f"inside `repeat`, `name={given}` gets each copy's number appended"
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
        self.report(error("E310", span, f"two layers are named `{name}`",
                          f"{how}: give one of them another `name=`" if how else "give one of them another `name=`",
                          (Label(other, "also named here"),)))

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
        lower = f"lower `momentum=` (`momentum={fits:g}` settles in {_count(steps, 'step')}), or " if fits > 0 else ""
        self.report(warning("W104", node.span, f"`{node.keyword}` needs about {needed:,} training steps for its "
                            f"running statistics to settle, but the run has at most {steps:,} ({_count(epochs, 'epoch')} "
                            f"of {_count(batches, 'batch', 'batches')}): evaluation would use statistics that never settled",
                            f"{lower}train for more epochs or with a smaller `batch`"))

    def report_constant_activation(self, node: n.Statement, entry: reg.Layer, bound: _Bound) -> bool:
        """E405 for an activation that sums to 1 over the last axis (softmax) applied to one unit:
        its output is the constant 1, whatever the loss. True when reported."""
        for slot, value in zip([p for p in entry.params if p.positional], node.positionals, strict=False):
            name = bound.args.get(slot.name)
            if slot.table == "activation" and isinstance(name, str) and reg.lookup("activation", name).sums_to_one:
                self.report(error("E405", value.span, f"a `{name}` over one unit is always 1, so nothing before it "
                                  "can learn", "use `sigmoid` for one probability, or give the layer one unit "
                                  "per class"))
                return True
        return False

    def check_block(self, node: n.Statement, entry: reg.Layer, bound: _Bound,
                    shape: tuple[int, ...] | None, name: str) -> tuple[ir.Layer | None, Any]:
        body_nodes = list(node.block or ())
        if entry.skip:
            body, out = self.check_layers(body_nodes, shape)
            if shape is not None and out is not None and out != shape:
                self.report(error("E403", node.keyword_span,
                                  f"`{entry.name}` block changes the shape from {show_shape(shape)} to {show_shape(out)}",
                                  f"the block's output is added to its input: end it with a layer of shape "
                                  f"{show_shape(shape)}, like `dense {shape[0]}`" if len(shape) == 1 else
                                  "the block's output is added to its input, so their shapes must be equal"))
                return None, None
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
        if not bound.ok or shape is None or out is None:
            return None, None
        params = sum(layer.params or 0 for layer in body)
        args = {k: v for k, v in bound.args.items() if k != "name"}
        return ir.Layer(entry.name, name, args, shape, out, params, node.span.line, tuple(body)), out

    # --- output, loss, data, metrics, early stopping ---------------------------------------

    def last_layer_span(self) -> n.Span | None:
        for node in reversed(self.layers):
            if isinstance(node, n.Statement):
                return node.keyword_span if node.block is not None else node.span
            return None
        loss = self.settings.get("loss")
        return loss.statement.span if loss else None

    @staticmethod
    def output_activation(layers: list[ir.Layer]) -> str:
        for layer in reversed(layers):
            entry = reg.layer(layer.kind)
            if entry.passes_activation:
                continue
            if entry.activates:
                return layer.args["activation"]
            if entry.block and not entry.skip:
                return _Checker.output_activation(list(layer.body))
            return "linear"
        return "linear"

    def check_training(self, data: ir.Data | None, input_shape: Any, layers: list[ir.Layer],
                       output: tuple[int, ...] | None) -> ir.Program | None:
        loss = self.setting("loss")
        loss_entry = reg.lookup("loss", loss.args["name"]) if loss else None
        activation = self.output_activation(layers)
        if loss_entry is not None and output is not None:
            self.check_output(loss_entry, output, data, activation)
        self.check_metrics(loss_entry)
        early = self.check_early_stop(data)
        self.warn_missing(input_shape, data)
        if any(d.is_error for d in self.diagnostics):
            return None
        s = {k: (v.args if v else {}) for k, v in self.settings.items()}
        optimizer = self.settings.get("optimizer")
        schedule = self.settings.get("schedule")
        params = sum(layer.params for layer in layers) if all(layer.params is not None for layer in layers) \
            and input_shape is not None else None
        return ir.Program(
            name=s.get("model", {}).get("name") or (Path(self.spec.path).stem if not self.spec.path.startswith("<")
                                                    else "") or "model",
            path=self.spec.path,
            data=data,
            input_shape=input_shape,
            layers=tuple(layers),
            output_shape=output,
            params=params,
            output_activation=activation,
            loss=ir.Named(loss_entry.name, _entry_args(loss.args)) if loss_entry else None,
            from_logits=bool(loss_entry and loss_entry.probability),
            optimizer=ir.Named(optimizer.args["name"], _entry_args(optimizer.args)) if optimizer else None,
            schedule=ir.Named(schedule.args["name"], _entry_args(schedule.args)) if schedule else ir.Named("constant"),
            batch=s.get("batch", {}).get("size", 32),
            epochs=s.get("epochs", {}).get("count", 10),
            early_stop=early,
            metrics=tuple(s.get("metrics", {}).get("names", ())),
            seed=s.get("seed", {}).get("value", 0),
            source=self.spec.source,
        )

    def check_output(self, loss: reg.Loss, output: tuple[int, ...], data: ir.Data | None, activation: str) -> None:
        span = self.last_layer_span()
        if span is None:
            return
        classes = data.classes if data and data.task == "classification" else None
        fix = None
        if loss.task == "categorical":
            if len(output) != 1 or output[0] < 2:
                hint = ("for two classes use `dense 1 sigmoid` with `loss binary_crossentropy`, "
                        "or `dense 2 softmax`") if output == (1,) else "end with `flatten` then `dense CLASSES softmax`"
                self.report(error("E500", span, f"`{loss.name}` needs a flat output with one unit per class, "
                                  f"got {show_shape(output)}", hint))
                return
            if data and data.target_width and data.task == "multilabel":
                fix = ("E503", f"`{loss.name}` needs one class index per example, but `{data.name}` has "
                       f"{data.target_width} targets per example", "use `binary_crossentropy` for several labels")
            elif classes is not None and output[0] != classes:
                fix = ("E501", f"the output has {_units(output)} but `{data.name}` has {classes} classes",
                       f"end with `dense {classes} softmax`")
            elif data and data.task == "regression":
                fix = ("E503", f"`{loss.name}` needs class labels, but the labels of `{data.name}` are not integers",
                       "use a regression loss such as `mse`, or store labels as integers")
        elif loss.task == "binary":
            if len(output) != 1:
                self.report(error("E500", span, f"`{loss.name}` needs a flat output, got {show_shape(output)}",
                                  "end with `flatten` then `dense 1 sigmoid`"))
                return
            if classes is not None and classes != 2:
                fix = ("E503", f"`{loss.name}` is for two classes, but `{data.name}` has {classes}",
                       f"use `loss categorical_crossentropy` with `dense {classes} softmax`")
            elif classes == 2 and output[0] != 1:
                fix = ("E501", f"`{loss.name}` needs one output unit for the two classes of `{data.name}`, "
                       f"got {output[0]}", "end with `dense 1 sigmoid`")
            elif data and data.target_width and data.task != "classification" and output[0] != data.target_width:
                fix = ("E502", f"the output has {_units(output)} but `{data.name}` has {data.target_width} "
                       f"label{'s' * (data.target_width != 1)} per example", f"end with `dense {data.target_width} sigmoid`")
        else:
            if classes is not None:
                fix = ("E503", f"`{loss.name}` is a regression loss, but `{data.name}` has class labels",
                       "use `loss categorical_crossentropy` (or `binary_crossentropy` for two classes)")
            elif data and data.target_width and output != (data.target_width,):
                fix = ("E502", f"the output has {_units(output)} but `{data.name}` has "
                       f"{data.target_width} target value{'s' * (data.target_width != 1)} per example",
                       f"end with `dense {data.target_width}`")
        if fix:
            self.report(error(fix[0], span, fix[1], fix[2]))
        elif loss.probability and activation not in (loss.probability, "linear"):
            self.report(warning("W103", span, f"`{loss.name}` expects a `{loss.probability}` output, "
                                f"not `{activation}`", f"end with `{loss.probability}`, or `linear` for logits; "
                                f"as written, the loss takes the `{activation}` outputs as logits"))

    def check_metrics(self, loss: reg.Loss | None) -> None:
        bound = self.settings.get("metrics")
        if not bound:
            return
        seen: dict[str, n.Value] = {}
        for value, name in zip(bound.statement.positionals, bound.args.get("names", ()), strict=True):
            if name is _UNKNOWN:
                continue
            if name in seen:
                self.report(error("E305", value.span, f"metric `{name}` is listed twice", "list it once",
                                  (Label(seen[name].span, "first listed here"),)))
                bound.ok = False
                continue
            seen[name] = value
            metric = reg.lookup("metric", name)
            if loss is not None and metric.needs_classification and loss.task == "regression":
                self.report(error("E504", value.span, f"`{name}` needs a classification loss, but the loss is "
                                  f"`{loss.name}`", "use `mae` or `mse` to measure a regression"))
                bound.ok = False

    def check_early_stop(self, data: ir.Data | None) -> ir.EarlyStop | None:
        bound = self.settings.get("early_stop")
        if bound is None or not bound.ok:
            return None
        a, node = bound.args, bound.statement
        monitor = a["monitor"]
        metrics = self.settings.get("metrics")
        listed = [m for m in (metrics.args.get("names", ()) if metrics else ()) if m is not _UNKNOWN]
        known = ["loss", "val_loss"] + listed + [f"val_{m}" for m in listed]
        if monitor not in known:
            if reg.lookup("metric", monitor.removeprefix("val_")) and self.mentioned("metrics") \
                    and not (metrics and metrics.ok):
                return None  # the `metrics` statement is broken or misspelled: it was reported there
            where = node.option("monitor")
            self.report(error("E505", where.value.span if where else node.span,
                              f"cannot monitor `{monitor}`: it is not computed", self.monitor_hint(monitor, known)))
            return None
        if monitor.startswith("val_") and data is not None and not data.has_val:
            split = f"`data {data.name} val=0.1`" if data.source == "builtin" else "`val=0.1` on `data`"
            self.report(error("E506", node.span, f"`early_stop` monitors `{monitor}`, but there is no validation data",
                              f"hold some out with {split}, or monitor `loss`"))
            return None
        base = reg.lookup("metric", monitor.removeprefix("val_"))
        mode = "max" if base is not None and base.higher_is_better and monitor.removeprefix("val_") != "loss" else "min"
        return ir.EarlyStop(a["patience"], monitor, a["min_delta"], a["restore_best"], mode)

    @staticmethod
    def monitor_hint(monitor: str, known: list[str]) -> str:
        """The closest quantity that is computed, or could be with one more metric."""
        could = [prefix + m for m in reg.names("metric") for prefix in ("", "val_")]
        guess = closest(monitor, known + [q for q in could if q not in known])
        if guess is None:
            return f"monitor one of {', '.join(f'`{k}`' for k in known)}"
        if guess in known:
            return f"did you mean `{guess}`?"
        needed = f"`metrics {guess.removeprefix('val_')}`"
        return f"add {needed} to compute it" if guess == monitor else f"did you mean `{guess}`? it needs {needed}"

    def warn_missing(self, input_shape: Any, data: ir.Data | None) -> None:
        if input_shape is None and data is None and not self.mentioned("input") and not self.mentioned("data") \
                and not self.training:
            first = next((x for x in self.layers if isinstance(x, n.Statement)), None)
            if first is not None:
                self.report(warning("W100", first.span, "the input shape is unknown: shapes are checked when arrays "
                                    "arrive", "add `input SHAPE` or `data SOURCE` to check them now"))
        for name, code, refusal in (("loss", "W101", "E507"), ("optimizer", "W102", "E508")):
            if not self.mentioned(name):
                hint = f"add, for example, `{reg.lookup('statement', name).example}`"
                if self.training:
                    self.report(error(refusal, self.file_start, f"no `{name}`: training needs one", hint))
                else:
                    self.report(warning(code, self.file_start, f"no `{name}`: `dlc run` and `fit` need one", hint))


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


def _entry_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "name"}


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"1 {noun}" if number == 1 else f"{number:,} {plural or noun + 's'}"


def _units(shape: tuple[int, ...]) -> str:
    """An output's size in words: `3 units`, or `shape 6x6x4` when it is not flat."""
    if len(shape) == 1:
        return f"{shape[0]} unit{'s' * (shape[0] != 1)}"
    return f"shape {show_shape(shape)}"


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def check_text(text: str, path: str = "<spec>", base_dir: Path | None = None, *, training: bool = False
               ) -> tuple[ir.Program | None, list[Diagnostic]]:
    """Parse and check spec text: the whole front end in one call. A long text is checked on a growing
    part of it, until the part is the whole text or checking it stopped at diagnostics that all point into
    it (not `no loss` and the like, which the rest of the text may answer)."""
    from dlc.grammar.parse import parse_growing

    for spec, syntax, _ in parse_growing(text, path):
        program, diagnostics = check(spec, base_dir, syntax, training=training)
        if len(diagnostics) > MAX_DIAGNOSTICS and sum(not is_whole_file(d.span) for d in diagnostics) >= MAX_DIAGNOSTICS:
            break
    return program, diagnostics


def check_bytes(data: bytes, path: str, base_dir: Path | None = None, *, training: bool = False
                ) -> tuple[ir.Program | None, list[Diagnostic], str]:
    """Check the bytes of a spec file. Returns the text too, for showing source lines; for a file
    that is not UTF-8, the text with the bad bytes replaced, so its one error can still be shown."""
    from dlc.grammar.parse import decode

    text, problems = decode(data, path)
    if problems:
        return None, problems, data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    program, diagnostics = check_text(text, path, base_dir, training=training)
    return program, diagnostics, text


def check_file(path: Path) -> tuple[ir.Program | None, list[Diagnostic], str]:
    """Check a spec file; relative data paths start at its folder. Returns the text read too."""
    return check_bytes(path.read_bytes(), str(path), path.parent)
