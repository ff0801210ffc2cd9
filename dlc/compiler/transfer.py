"""Starting from a trained run (`init "RUN_DIR"`): the run's `spec.dl` read and checked with this
checker (never its weights, so `dlc check` stays fast and loads nothing), then each layer of the
model matched with the run's layer of its name by kind and parameter shapes. A stage of the
checker (`check.py`).

A run folder is input from elsewhere (downloaded, shared, edited): its spec is read only when it is
a plain file of a spec's size, and whatever is wrong with it is one error at `init`, never a
traceback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from dlc.compiler import ir
from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.diagnostics import Diagnostic
from dlc.compiler.registry import show_shape
from dlc.grammar import nodes as n

# The largest spec.dl of a run that is read: a thousand times the largest spec in use.
MAX_RUN_SPEC = 1 << 20
# The largest run.json read for the folder the run's relative data paths start at.
MAX_RUN_JSON = 1 << 20

Weights = tuple[str, dict[str, tuple[int, ...]] | None]  # a layer's kind and its parameters' shapes


@dataclass(frozen=True)
class _Run:
    """What the checker knows of the `init` run: where it is, as written and as found, and the kind
    and parameter shapes of each of its layers, by name."""

    init: ir.Init
    written: str
    layers: dict[str, Weights]


class RunSpecError(Exception):
    """The run's spec cannot be used: `problem` says why, in the words of E701."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


class TransferStage:
    """The `init` run read, and the model's layers matched with its layers."""

    def read_init(self) -> _Run | None:
        """The `init` run's layers, or None (no `init`, a broken one, or one reported here)."""
        bound = self.setting("init")
        if bound is None or not self.reads_runs:
            return None
        written = bound.args["run"]
        where = bound.statement.positionals[0].span
        path = Path(written) if Path(written).is_absolute() else self.base_dir / written
        if not path.exists():
            hint = None if Path(written).is_absolute() else m.LOOKED_FOR_RELATIVE.format(path=path)
            self.report(m.RUN_NOT_FOUND.at(where, hint=hint, run=written, path=path))
            return None
        if not path.is_dir():
            self.report(m.NOT_A_RUN_FOLDER.at(where, run=written))
            return None
        if not os.path.lexists(path / "spec.dl"):
            self.report(m.NOT_A_RUN.at(where, run=written))
            return None
        try:
            data = read_run_spec(path / "spec.dl")
            program = self.check_run_spec(path, _decoded(data))
        except RunSpecError as e:
            self.report(m.RUN_SPEC_UNUSABLE.at(where, run=written, problem=e.problem))
            return None
        layers = {layer.name: _weights(layer) for layer in ir.leaves(program.layers)}
        digest = hashlib.sha256(data).hexdigest()  # of the bytes, as the run's run.json and the runtime hash it
        return _Run(ir.Init(str(path.resolve()), bound.args["strict"], digest), written, layers)

    def check_run_spec(self, run_dir: Path, text: str) -> ir.Program:
        """The run's spec checked as it was run: its relative data paths start at the folder its
        run.json names (where the spec was), else at the run folder. Its own `init` is not read."""
        from dlc.grammar.parse import parse

        spec, syntax = parse(text, str(run_dir / "spec.dl"))
        program, diagnostics = self.check_other(spec, _spec_dir(run_dir), syntax)
        first = next((d for d in diagnostics if d.is_error), None)
        if first is not None:
            raise RunSpecError(m.RUN_SPEC_ERROR.format(line=first.span.line, message=first.message))
        if program.input_shape is None or any(layer.output_shape is None for layer in program.layers):
            raise RunSpecError(m.RUN_SPEC_SHAPES_UNKNOWN)
        return program

    def match_run(self, layers: list[ir.Layer], run: _Run | None) -> list[ir.Layer]:
        """The layers with `init="run"` where the run has a layer of the same name, kind and
        parameter shapes. Reports E703 at a layer whose name the run has with other shapes, E704 at a
        layer left fresh under `strict=true`, and E702 at `init` when nothing matches by name."""
        if run is None:
            return layers
        matched = self.match_layers(layers, run)
        if not self.named_in_run and not any(d.is_error for d in self.diagnostics):
            learned = [name for name, (_, weights) in run.layers.items() if weights]
            statement = self.setting("init").statement
            self.report(m.COPIES_NOTHING.at(statement.span, run=run.written,
                                            names=m.quoted(learned) or m.NO_NAMES))
        return matched

    def match_layers(self, layers: list[ir.Layer], run: _Run) -> list[ir.Layer]:
        out = []
        for layer in layers:
            if reg.layer(layer.kind).block:
                body = self.match_layers(list(layer.body), run)
                learned = [leaf for leaf in ir.leaves(tuple(body)) if reg.layer(leaf.kind).learns]
                init = "run" if learned and all(leaf.init == "run" for leaf in learned) else "fresh"
                out.append(dataclasses.replace(layer, body=tuple(body), init=init))
                continue
            if not reg.layer(layer.kind).learns or layer.input_shape is None:
                out.append(layer)
                continue
            here, there = _weights(layer), run.layers.get(layer.name)
            span = self.layer_spans[layer.name]
            if there is not None and there[1]:
                self.named_in_run += 1
                if there == here:
                    out.append(dataclasses.replace(layer, init="run"))
                    continue
                kinds = here[0] != there[0]
                self.report_once(span, m.OTHER_SHAPES.at(span, name=layer.name, here=_described(here, kinds),
                                                         there=_described(there, kinds), run=run.written))
            elif run.init.strict:
                self.report_once(span, m.LEFT_FRESH.at(span, name=layer.name, run=run.written))
            out.append(layer)
        return out

    def report_once(self, span: n.Span, diagnostic: Diagnostic) -> None:
        """One diagnostic per statement: the copies a `repeat` makes of it are one cause."""
        if span.start not in self.reported_at_layers:
            self.reported_at_layers.add(span.start)
            self.report(diagnostic)


def _weights(layer: ir.Layer) -> Weights:
    entry = reg.layer(layer.kind)
    return layer.kind, (entry.weights(layer.input_shape, layer.args) if entry.learns else None)


def _described(weights: Weights, kind_too: bool) -> str:
    """A layer's parameters in E703's words (`parameters kernel 64x16, bias 16`), with its kind when
    the two layers' kinds differ."""
    kind, shapes = weights
    if not shapes:
        return m.NO_WEIGHTS.format(kind=kind)
    shown = ", ".join(f"{name} {show_shape(s)}" for name, s in shapes.items())
    return (m.KIND_WEIGHTS if kind_too else m.WEIGHTS).format(kind=kind, shapes=shown)


def read_run_spec(path: Path) -> bytes:
    """The bytes of a run's spec.dl, read only when it is a plain file (not a link, a folder, a device
    or a pipe, which could block) of at most MAX_RUN_SPEC bytes. The runtime reads it so too, to
    make sure it is the spec that was checked."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            raise RunSpecError(m.RUN_SPEC_LINK)
        if not stat.S_ISREG(info.st_mode):
            raise RunSpecError(m.RUN_SPEC_NOT_A_FILE)
        if info.st_size > MAX_RUN_SPEC:
            raise RunSpecError(m.RUN_SPEC_TOO_LARGE.format(limit=MAX_RUN_SPEC))
        with path.open("rb") as f:
            data = f.read(MAX_RUN_SPEC + 1)
    except OSError as e:
        raise RunSpecError(m.RUN_SPEC_CANNOT_READ.format(reason=e.strerror or e)) from None
    if len(data) > MAX_RUN_SPEC:  # it grew since
        raise RunSpecError(m.RUN_SPEC_TOO_LARGE.format(limit=MAX_RUN_SPEC))
    return data


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise RunSpecError(m.RUN_SPEC_NOT_UTF8) from None


def _spec_dir(run_dir: Path) -> Path:
    """Where the run's relative data paths start: the folder its run.json records the spec came
    from, when that is a folder here; else the run folder. Anything odd in run.json is passed over:
    the data facts that matter here fail, if at all, as the run's spec's own error."""
    record = run_dir / "run.json"
    try:
        if record.is_symlink() or not record.is_file() or record.stat().st_size > MAX_RUN_JSON:
            return run_dir
        folder = json.loads(record.read_text(encoding="utf-8")).get("spec_dir")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return run_dir
    return Path(folder) if isinstance(folder, str) and Path(folder).is_absolute() and Path(folder).is_dir() \
        else run_dir
