"""The Python API: `compile`, `load`, `load_run`, `Program`, `SpecError`. The CLI is a thin shell
over these functions; other tools embed specs through them.

JAX, Flax and Optax are imported only when a program trains, evaluates or predicts, so that
`dlc.compile(...)` and `summary()` stay as fast as `dlc check`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlc import arguments
from dlc.compiler import ir
from dlc.compiler.check import check
from dlc.compiler.diagnostics import Diagnostic, render_text
from dlc.grammar import nodes as n
from dlc.grammar.parse import decode, parse
from dlc.runtime.options import FitOptions


class SpecError(ValueError):
    """An invalid spec. `diagnostics` hold what `dlc check` would print; str() is that text."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        self.diagnostics = [d for d in diagnostics]
        self.sources = sources  # path -> text, for rendering the diagnostics' source lines
        super().__init__(render_text([d for d in diagnostics if d.is_error] or diagnostics, sources).rstrip())


class SpecWarning(UserWarning):
    """A warning about the spec that only its data shows (W104 once a file's size is known, say),
    given with `warnings.warn` when `fit` has loaded the data; `diagnostic` is what `dlc check`
    would print, `sources` the text to show it in."""

    def __init__(self, diagnostic: Diagnostic, sources: dict[str, str]):
        self.diagnostic, self.sources = diagnostic, sources
        super().__init__(render_text([diagnostic], sources).rstrip())


def _checked(spec: n.Spec, syntax: list[Diagnostic], base_dir: Path, **kw: Any) -> tuple[ir.Program, list]:
    program, diagnostics = check(spec, base_dir, syntax, **kw)
    if program is None:
        raise SpecError(diagnostics, {spec.path: spec.source})
    return program, diagnostics


def compile(source: str | bytes, *, path: str = "<spec>", base_dir: str | Path | None = None) -> Program:  # noqa: A001
    """A program from spec text, or the bytes of a spec file as read (not UTF-8: a SpecError).
    Relative data paths start at `base_dir` (default: the working directory)."""
    return _program(source, path, Path(base_dir) if base_dir is not None else Path.cwd())


def load(path: str | Path) -> Program:
    """A program from a spec file; relative data paths start at the file's folder."""
    path = Path(path)
    return _program(path.read_bytes(), str(path), path.parent)


def _program(source: str | bytes, path: str, base_dir: Path, reads_runs: bool = True) -> Program:
    if isinstance(source, bytes):
        text, problems = decode(source, path)
        if problems:
            raise SpecError(problems, {path: source.decode("utf-8", errors="replace")})
        source = text
    elif not isinstance(source, str):
        raise TypeError(f"source must be spec text (str) or bytes, got {type(source).__name__}")
    spec, syntax = parse(source, path)
    program, diagnostics = _checked(spec, syntax, base_dir, reads_runs=reads_runs)
    return Program(spec, syntax, program, diagnostics, base_dir, reads_runs)


def load_run(run_dir: str | Path) -> Program:
    """A trained program from a run folder written by `dlc run` or `Program.save`: its spec checked
    with the facts recorded of the data it trained on (evaluating or predicting on new data needs
    none of the training data; a folder of an older dlc, without the facts, reads the data file)."""
    from dlc.runtime.runfolder import read_run
    from dlc.runtime.session import Session

    run_dir = Path(run_dir)
    record = read_run(run_dir)
    base = Path(record.spec_dir)
    # The weights are the run's own: an `init` run they once started from is not needed again.
    if record.facts is None:
        owner = _program(record.source, record.spec_path, base, reads_runs=False)
    else:
        spec, syntax = parse(record.source, record.spec_path)
        program, diagnostics = _checked(spec, syntax, base, arrays=record.facts, reads_runs=False)
        owner = Program(spec, syntax, program, diagnostics, base, reads_runs=False)
    owner.trained = Session.restore(run_dir, owner, record)
    return owner


@contextlib.contextmanager
def _progress_shown(verbose: int, options: FitOptions, program: ir.Program, previous: Any):
    """`options` with the progress display of `verbose` told of every epoch and the compile,
    before the caller's own callbacks; the display closed however the fit ends."""
    if not verbose:
        yield options
        return
    from dlc.runtime.progress import EpochProgress

    first = previous.epochs_trained if previous is not None else 0
    progress = EpochProgress(first + (options.epochs or program.epochs), program.name, bar=verbose == 1)

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        progress(epoch, logs)
        if options.on_epoch:
            options.on_epoch(epoch, logs)

    def on_compiled(seconds: float, from_cache: bool) -> None:
        progress.compiled(seconds, from_cache)
        if options.on_compiled:
            options.on_compiled(seconds, from_cache)

    try:
        yield dataclasses.replace(options, on_epoch=on_epoch, on_compiled=on_compiled)
    finally:
        progress.close()


class Program:
    """A checked spec, and once fitted, its trained state."""

    def __init__(self, spec: n.Spec, syntax: list[Diagnostic], program: ir.Program,
                 diagnostics: list[Diagnostic], base_dir: Path, reads_runs: bool = True):
        self._spec, self._syntax, self._base_dir = spec, syntax, base_dir
        self._reads_runs = reads_runs  # False for a reloaded run: its `init` is history
        self.ir = program
        self.diagnostics = diagnostics  # warnings of a valid spec
        self.trained = None  # a runtime.session.Session once fitted or loaded
        self.members: list[Program] = []  # a sweep's, once fitted: one Program per member, in `ir.sweep` order

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def base_dir(self) -> Path:
        """The folder the spec's relative data paths start at."""
        return self._base_dir

    @property
    def source(self) -> str:
        return self._spec.source

    def summary(self) -> str:
        from dlc.compiler.summary import summary

        return summary(self.ir)

    def __repr__(self) -> str:
        return f"<dlc.Program {self.ir.name!r}: {self.ir.params if self.ir.params is not None else '?'} params>"

    def recheck(self, arrays: ir.Data | None, warn: bool = False) -> ir.Program:
        """The IR for training: with the facts of the data as loaded (arrays given to `fit`, or the
        spec's data once read), and a loss and an optimizer required. Errors point into the spec,
        as `dlc check` would; with `warn`, warnings that checking the spec alone did not give are
        given as `SpecWarning`s."""
        import warnings

        program, diagnostics = _checked(self._spec, self._syntax, self._base_dir, arrays=arrays, training=True,
                                        reads_runs=self._reads_runs)
        for d in diagnostics if warn else ():
            if d not in self.diagnostics:
                warnings.warn(SpecWarning(d, {self._spec.path: self._spec.source}), stacklevel=2)
        return program

    def fit(self, x: Any = None, y: Any = None, *, validation_data: tuple[Any, Any] | None = None,
            validation_split: float | None = None, epochs: int | None = None, batch_size: int | None = None,
            seed: int | None = None, reset: bool = False, verbose: int | bool = 0,
            on_epoch: Callable[[int, dict[str, float]], None] | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, checkpoint_interval: float = 2.0,
            should_stop: Callable[[], bool] | None = None, devices: int | str | None = None,
            data_budget: int | None = None,
            on_compiled: Callable[[float, bool], None] | None = None) -> list[dict[str, float]]:
        """Train. Arrays from the caller, or the spec's `data` when none are given. Returns the
        history: one dict per epoch (loss, metrics, `val_` ones, `lr`, `epoch_time`).

        As in Keras, a program already trained (by `fit` or `dlc.load_run`) goes on from its
        weights and optimizer state, with its input normalization and class labels, and numbers
        its epochs on from the last one (each epoch draws its own shuffle and dropout masks);
        `reset=True` starts again from the spec's initialization. `epochs`, `batch_size`, `seed`
        and `validation_split` (the share of the examples held out for validation, instead of
        the spec's `val=`) override the spec for this fit. `verbose`: 0 silent, 1 a progress bar
        on a terminal (a line per epoch elsewhere), 2 a line per epoch.

        A sweep (a spec with lists) trains every member, those that differ only in numbers that
        change no shape as one vmapped program, and returns one history per member; the members
        are then `program.members`, trained Programs of their written-out specs (`on_epoch` is told
        each member's epochs, with its index as `member`; `verbose` shows nothing; with
        `checkpoint_dir` every group is checkpointed, and `resume=True` goes on from there; with
        `devices`, each group's members are split over the devices).

        With `checkpoint_dir`, the run is checkpointed after epochs (at most once per
        `checkpoint_interval` seconds, and always at the end or when stopped) and `resume=True`
        continues it exactly. `should_stop()` is asked after every epoch: True checkpoints and
        raises `dlc.Interrupted`. A non-finite loss raises `Diverged`.

        `devices` (an int or "all") shards each batch over that many devices (parameters
        replicated); `data_budget` (bytes, default half the device's free memory, or
        `$DLC_DATA_BUDGET`) bounds the training data kept on the device: more is streamed.
        `on_compiled(seconds, from_cache)` is told when the epoch program is compiled."""
        if (x is None) != (y is None):
            raise ValueError("fit needs both x and y, or neither (to use the spec's `data`)")
        if x is not None:
            x, y = arguments.examples_and_labels(x, y)
        if validation_data is not None:
            if x is None:
                raise ValueError("validation_data goes with x and y: without them, fit uses the spec's `data`, "
                                 "whose `val=` option holds out validation examples")
            if validation_split is not None:
                raise ValueError("give validation_data or validation_split, not both")
            validation_data = arguments.pair("validation_data", validation_data)
        if validation_split is not None:
            validation_split = arguments.fraction("validation_split", validation_split)
        epochs = None if epochs is None else arguments.integer("epochs", epochs, 1, 2**31)
        batch_size = None if batch_size is None else arguments.integer("batch_size", batch_size, 1, 2**31)
        seed = None if seed is None else arguments.integer("seed", seed, 0, 2**32)
        verbose = arguments.verbosity(verbose)
        for name, function in (("on_epoch", on_epoch), ("should_stop", should_stop), ("on_compiled", on_compiled)):
            arguments.callback(name, function)
        arguments.folder("checkpoint_dir", checkpoint_dir)
        if arguments.boolean("resume", resume) and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, the folder of the run to continue")
        previous = None if arguments.boolean("reset", reset) else self.trained
        checkpoint_interval = arguments.seconds("checkpoint_interval", checkpoint_interval)
        devices = arguments.devices(devices)
        data_budget = None if data_budget is None else arguments.integer("data_budget", data_budget, 1)
        from dlc.runtime.session import Session

        options = FitOptions(epochs=epochs, seed=seed, batch=batch_size, validation_split=validation_split,
                             on_epoch=on_epoch,
                             checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
                             resume=resume, checkpoint_interval=checkpoint_interval, should_stop=should_stop,
                             devices=devices, data_budget=data_budget, on_compiled=on_compiled)
        if self.ir.sweep is not None:
            return self._fit_sweep(x, y, validation_data, options, bool(self.members) and not reset)
        with _progress_shown(verbose, options, self.ir, previous) as options:
            self.trained = Session.fit(self, x, y, validation_data, options, previous)
        return self.trained.history

    def _fit_sweep(self, x: Any, y: Any, validation_data: Any, options: FitOptions,
                   again: bool) -> list[list[dict[str, float]]]:
        """Train every member of a sweep, groups of them as one vmapped program; the members are
        `self.members`, Programs of their written-out specs. Returns each member's history; a
        member that diverged keeps the epochs it trained, is left untrained, and is warned of."""
        import warnings

        from dlc.runtime.sweep import fit_members

        if again:
            raise ValueError("a sweep trains from the spec's initialization (or resumes from its checkpoint_dir): "
                             "fit its members (`program.members`) one by one to go on from their weights, or pass "
                             "reset=True to train the sweep again")
        self.members = [_program(member.source, self._spec.path, self._base_dir, self._reads_runs)
                        for member in self.ir.sweep.members]
        histories = []
        for member, label, outcome in zip(self.members, self.ir.sweep.labels,
                                          fit_members(self.members, x, y, validation_data, options), strict=True):
            if isinstance(outcome, Exception):
                warnings.warn(f"sweep member {label}: {outcome}", RuntimeWarning, stacklevel=3)
                histories.append(outcome.history)
            else:
                member.trained = outcome
                histories.append(outcome.history)
        return histories

    @property
    def module(self) -> Any:
        """The spec's model as a `flax.linen.Module`: `module.apply(variables, x)` gives what
        `predict` gives for inputs already normalized (`predict` normalizes them first)."""
        if self.trained is not None:
            return self.trained.trainer.lowered.module
        from dlc.compiler.lower import lower

        return lower(self.ir).module

    @property
    def variables(self) -> dict[str, Any]:
        """The trained variables of `module`: `params` (and `batch_stats` where the model has
        batch normalization), each keyed by layer name, as `module.apply` takes them."""
        state = self._session().state
        return {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}

    @property
    def classes(self) -> list | None:
        """The class labels of a trained classifier, in the order of its outputs (`predict`'s
        columns; a one-unit binary output is the probability of the last); None for regression
        and for several labels per example."""
        return self._session().classes

    def _session(self):
        if self.trained is None and self.ir.sweep is not None:
            raise RuntimeError(f"program {self.ir.name!r} is a sweep of {len(self.ir.sweep.members)} members: "
                               "evaluate, predict or save one of `program.members` (after fit())")
        if self.trained is None:
            raise RuntimeError(f"program {self.ir.name!r} is not trained: call fit() first, or dlc.load_run(dir)")
        return self.trained

    def evaluate(self, x: Any = None, y: Any = None) -> dict[str, float]:
        """Loss and metrics on (x, y); with no arguments, on the test split (else validation, else train)."""
        if (x is None) != (y is None):
            raise ValueError("evaluate needs both x and y, or neither (to use the spec's own test split)")
        session = self._session()
        if x is not None:
            x, y = arguments.examples_and_labels(x, y)
        return session.evaluate(x, y)

    def predict(self, x: Any) -> Any:
        """The model's outputs for x, as a NumPy array (its softmax/sigmoid applied)."""
        session = self._session()
        return session.predict(arguments.features("x", x))

    def save(self, run_dir: str | Path) -> Path:
        """Write the spec, checkpoint, normalization and label mapping to a run folder."""
        return self._session().save(Path(run_dir))
