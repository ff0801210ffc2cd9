"""AST to checked IR. Every rule of the language, every error in one pass, one error per cause.

The checker binds each statement's values to its registry entry's parameters (types,
ranges, defaults), infers shapes layer by layer through nested blocks, and relates the
output to the loss and the data. A piece that is broken (a syntax error, an unknown name,
a bad value, a shape that does not fit) makes what depends on it unknown, so later rules
stay silent about it instead of blaming the wrong line.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dlc.compiler import ir, sweeps
from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.binding import _SYNONYM_STATEMENTS, _UNKNOWN, MAX_INT, BindingStage, _Bound
from dlc.compiler.diagnostics import MAX_DIAGNOSTICS, Diagnostic, Label, file_span, is_whole_file, sort_key
from dlc.compiler.registry import Param
from dlc.compiler.rules import DataStage, TrainingStage
from dlc.compiler.shapes import MAX_LAYERS, ShapeStage
from dlc.compiler.suggest import closest
from dlc.compiler.transfer import TransferStage
from dlc.grammar import nodes as n

__all__ = ["MAX_INT", "MAX_LAYERS", "check", "check_bytes", "check_file", "check_text"]


def check(spec: n.Spec, base_dir: Path | None = None, extra: list[Diagnostic] | None = None, *,
          arrays: ir.Data | None = None, training: bool = False, reads_runs: bool = True
          ) -> tuple[ir.Program | None, list[Diagnostic]]:
    """Check a parsed spec. Returns the IR (None when there is any error) and all diagnostics.

    `base_dir` resolves relative data paths (the spec file's folder; default the working directory).
    `extra` holds diagnostics from earlier stages (syntax errors), merged in source order.
    `arrays` holds the facts of data as loaded (arrays given to `fit`, or the spec's `data` once
    read, with its classes counted): they take the place of what the spec's `data` tells.
    `training`: the program is about to train, so a missing loss or optimizer is an error.
    `reads_runs`: an `init` reads its run's spec.dl (False for that spec itself: one run deep, so that
    runs that name each other cannot loop).
    Past MAX_DIAGNOSTICS, checking stops, and a last diagnostic says so.
    A spec with lists is a sweep: each member is checked as a spec (`sweeps.py`), and the IR is the
    first member's, with every member in its `sweep`.
    """
    if len(extra or []) > MAX_DIAGNOSTICS:  # the parser stopped: what it made of the text is no spec
        return None, sorted(extra or [], key=sort_key)
    syntax_errors = [d.span for d in extra or [] if d.is_error]

    def check_one(member: n.Spec) -> tuple[_Checker, ir.Program | None, list[Diagnostic]]:
        checker = _Checker(member, base_dir or Path.cwd(), arrays, training, syntax_errors, reads_runs)
        try:
            program = checker.run()
        except _TooMany:
            program = None
            checker.diagnostics.append(m.TOO_MANY_ERRORS.at(file_span(spec.path), limit=MAX_DIAGNOSTICS))
        return checker, program, checker.diagnostics

    lists = sweeps.axes(spec)
    if lists:  # each member checked as a spec of its own (`sweeps.py`)
        program, found = sweeps.check_sweep(spec, lists, check_one)
    else:
        _, program, found = check_one(spec)
    diagnostics = sorted((extra or []) + found, key=sort_key)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    return program, diagnostics


class _TooMany(Exception):
    """The file has more diagnostics than are shown."""


class _Checker(BindingStage, DataStage, ShapeStage, TransferStage, TrainingStage):
    """The checker's shared state, and the run through its stages: statements sorted, then data and
    input (`rules.py`), the `init` run (`transfer.py`), layers and shapes (`shapes.py`), the layers
    matched with the run's, and the training rules and the IR (`rules.py`); every stage binds values
    with `binding.py`."""

    def __init__(self, spec: n.Spec, base_dir: Path, arrays: ir.Data | None = None, training: bool = False,
                 syntax_errors: list[n.Span] | None = None, reads_runs: bool = True):
        self.spec = spec
        self.syntax_errors = syntax_errors or []
        self.base_dir = base_dir
        self.arrays = arrays
        self.training = training
        self.reads_runs = reads_runs
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
        self.layer_spans: dict[str, n.Span] = {}  # each layer's statement, by the layer's name
        self.frozen = False  # inside a block given `trainable=false`
        self.named_in_run = 0  # layers with parameters whose name the `init` run has
        self.reported_at_layers: set[int] = set()  # statements E703 or E704 was reported at
        self.data: ir.Data | None = None
        self.bound_values: dict[int, tuple[Param, object]] = {}  # by the value node's id: see `convert`
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
        run = self.read_init()
        layers, output_shape = self.check_layers(self.layers, input_shape, top=True)
        layers = self.match_run(layers, run)
        return self.check_training(data, input_shape, layers, output_shape, run.init if run else None)

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
                self.report(m.NO_BLOCK_TAKEN.at(node.keyword_span, keyword=node.keyword))
            first = self.settings.get(node.keyword, _UNKNOWN)
            if first is not _UNKNOWN:
                labels = (Label(first.statement.span, m.FIRST_SET_HERE),) if first else ()
                self.report(m.SET_TWICE.at(node.span, keyword=node.keyword, labels=labels))
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
    def check_other(spec: n.Spec, base_dir: Path, syntax: list[Diagnostic]) -> tuple[ir.Program | None,
                                                                                  list[Diagnostic]]:
        """Check another spec (an `init` run's) with a checker of its own, which reads no run."""
        return check(spec, base_dir, syntax, reads_runs=False)

    @staticmethod
    def setting_names() -> list[str]:
        return reg.names("statement")

    def mentioned(self, name: str) -> bool:
        """Whether the spec has a `name` statement, even a broken or misspelled one."""
        return name in self.settings or name in self.misspelled

    def setting_params(self, node: n.Statement) -> tuple[Param, ...]:
        """A setting's parameters; for `loss`, `optimizer` and `schedule` also its entry's options."""
        setting = reg.lookup("statement", node.keyword)
        assert isinstance(setting, reg.Setting)
        if setting.selects and node.positionals and isinstance(node.positionals[0], n.Name):
            entry = reg.lookup(setting.selects, node.positionals[0].value)
            if entry is not None:  # the entry's own options first: they are the ones users look for
                return setting.positionals + entry.options + setting.options
        return setting.params


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
