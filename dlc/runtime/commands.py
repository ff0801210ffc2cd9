"""What the `dlc` verbs do, apart from parsing and showing: `run` starts on a claimed run folder
(`claims.started`: refusing one that is not this run's to take, or a resume of a changed spec;
XLA's flags set; a distributed run joined), trains and writes the folder; `repeat_check` trains
again and compares;
`evaluate` and `predict` use a reloaded run. The CLI shows what they return and gives each error
its exit status: `RunRefused` is a usage error, `RunInterrupted` a signal's; `RunFailed` and a
ValueError (the spec's errors, a SpecError, among them) are one line each, as are, from `evaluate`
and `predict`, the `runtime_errors()`, which `run` turns into RunFailed.

Standard library only at import: a run folder is claimed, and XLA's flags set, before JAX starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dlc.runtime.claims import (
    RunFailed,
    RunFolder,
    RunRefused,
    RunRequest,
    claim_run,
    discard_unstarted,
    has_checkpoint,
    started,
)
from dlc.runtime.identity import train_on_hint
from dlc.runtime.options import FitOptions
from dlc.runtime.runlock import RunLockedError

if TYPE_CHECKING:
    from dlc.compiler import ir
    from dlc.runtime.session import Session, SpecOwner


class RunInterrupted(Exception):
    """A run stopped by a signal: what was kept, and the command that continues it."""


def runtime_errors() -> tuple[type[Exception], ...]:
    """The runtime's errors of bad data, run folders, devices, memory, resuming and distributed
    runs: one line each (imported with JAX: asked for once a verb has trained or loaded a run)."""
    from dlc.runtime.devices import DeviceError
    from dlc.runtime.distributed import DistributedError
    from dlc.runtime.memory import MemoryGuardError
    from dlc.runtime.session import ResumeError
    from dlc.runtime.sources import DataError
    from dlc.runtime.storage import RunFolderError

    return DataError, RunFolderError, DeviceError, MemoryGuardError, ResumeError, DistributedError


def sweep_refusal(program: ir.Program, cannot: str) -> str | None:
    """Why a verb will not write out `program`, `cannot` saying which: a sweep, whose first member
    written out alone would pass for the sweep. None for an ordinary program. Asked by `dlc
    compile --emit py|hlo` (`dlc run` trains a sweep: `sweeprun`)."""
    if program.sweep is None:
        return None
    sweep = program.sweep
    return (f"this spec is a sweep of {len(sweep.members)} members (axes {', '.join(a.name for a in sweep.axes)}): "
            f"{cannot}")


@dataclass(frozen=True)
class RunResult:
    folder: Path
    session: Session
    metrics: dict  # as metrics.json holds them
    imports: float  # seconds to import JAX and the runtime (and join a distributed run)
    devices: int | str | None  # what it trained on, as `FitOptions.devices` says it


class RunDisplay(Protocol):
    """How a run is shown while it goes (the CLI's terminal)."""

    def claimed(self, folder: RunFolder) -> None:
        """Told once the folder is claimed and locked, before JAX starts."""

    def training(self) -> AbstractContextManager[tuple[Callable, Callable]]:
        """Held while training; gives the `on_epoch` and `on_compiled` of `FitOptions`."""


def run(owner: SpecOwner, request: RunRequest, display: RunDisplay) -> RunResult:
    """`dlc run`: train `owner`'s spec on its data into a run folder, and write the folder. The
    folder stays locked until the run ends; a signal ends it at the next safe point."""
    if request.stopping():
        raise RunInterrupted("interrupted before the run started; nothing was saved")
    imports_started = time.perf_counter()
    with started(request, lambda asked: claim_run(asked, owner.ir.name, owner.ir.source)) as (request, folder, shown):
        display.claimed(folder)
        result = _train(owner, request, folder, display, imports_started)
        return dataclasses.replace(result, folder=shown)


def _train(owner: SpecOwner, request: RunRequest, folder: RunFolder, display: RunDisplay,
           imports_started: float) -> RunResult:
    """Train into the claimed folder, and write the folder."""
    from dlc.runtime.runfolder import write_run
    from dlc.runtime.session import Session

    imports = time.perf_counter() - imports_started
    if request.stopping():
        raise _interrupted(folder)
    options = dataclasses.replace(request.options, checkpoint_dir=folder.path / "training", resume=folder.resume)
    try:
        with _unfinished(owner, folder), display.training() as (shown, on_compiled), \
                tracked(request, folder.path, shown) as on_epoch:
            session = Session.fit(owner, None, None, None,
                                  dataclasses.replace(options, on_epoch=on_epoch, on_compiled=on_compiled))
        metrics = write_run(folder.path, session)
    except runtime_errors() as e:
        from dlc.runtime.session import ResumeError

        if isinstance(e, ResumeError):  # another seed or number of epochs than the checkpoint's
            raise RunFailed(f"{str(e).replace('cannot resume:', f'cannot resume `{folder.path}`:', 1)}; "
                            f"{train_on_hint(folder.path, request.spec)}") from None
        raise RunFailed(str(e)) from None
    if request.stopping():  # during the final evaluation and writes, which were finished first
        raise RunInterrupted(f"interrupted as the run finished; its folder is complete: {folder.path}")
    return RunResult(folder.path, session, metrics, imports, request.options.devices)


def tracked(request: RunRequest, run_dir: Path, on_epoch: Callable, members: list[str] | None = None
            ) -> AbstractContextManager[Callable]:
    """The epoch callback, which with `--tensorboard` writes each epoch's scalars too, into
    RUN/tensorboard (a sweep's `members`: one folder each there); the writer library is imported
    only then: it costs `dlc run` start-up time."""
    if not request.tensorboard:
        return contextlib.nullcontext(on_epoch)
    from dlc.runtime.tracking import tensorboard_epochs

    return tensorboard_epochs(run_dir / "tensorboard", on_epoch, members)


@contextlib.contextmanager
def _unfinished(owner: SpecOwner, folder: RunFolder) -> Iterator[None]:
    """How training that does not finish ends: the history of a run that a signal stopped, or that
    diverged, is written; a folder this command made is removed again if training never started."""
    from dlc.runtime.runfolder import write_history
    from dlc.runtime.stopping import Diverged, Interrupted

    try:
        yield
    except Interrupted as e:
        write_history(folder.path, e.history)
        raise _interrupted(folder, e.epoch) from None
    except RunLockedError as e:
        raise RunRefused(str(e)) from None
    except Diverged as e:
        write_history(folder.path, e.history)
        lr = owner.ir.optimizer.args["lr"] if owner.ir.optimizer else None
        last = f"epoch {e.epoch - 1} is the last finite one; " if e.epoch > 1 and e.start is None else ""
        raise RunFailed(f"{e}; {last}lower the learning rate (`lr={lr:g}` now) or clip gradients "
                        "(`clip=1.0` on `optimizer`)") from None
    except (ValueError, *runtime_errors()):
        discard_unstarted(folder.path, folder.created)
        raise


def _interrupted(folder: RunFolder, epoch: int | None = None) -> RunInterrupted:
    """What a signal kept of a run, and the command that continues it."""
    if has_checkpoint(folder.path):
        after = f" after epoch {epoch}" if epoch else ""
        line = f"interrupted{after}; the run is saved. Continue it with:"
    else:
        line = "interrupted before the first checkpoint. Start the run again with:"
    return RunInterrupted(f"{line}\n  {folder.resume_command}")


def repeat_check(owner: SpecOwner, first: Session, devices: int | str | None) -> str:
    """`dlc run --repeat-check`: train the same spec with the same seed on the same `devices` again
    and compare every number: history (all but the timings) and final parameters, bit for bit. The
    line saying so, or RunFailed naming what differs."""
    from dlc.runtime.session import Session

    second = Session.fit(owner, None, None, None, FitOptions(epochs=first.program.epochs, seed=first.program.seed,
                                                             devices=devices))
    return same_again({"": (first, first.history)}, {"": (second, second.history)})


def same_again(first: dict[str, tuple[Session | None, list[dict]]],
               second: dict[str, tuple[Session | None, list[dict]]]) -> str:
    """The repeat check's verdict on two trainings of the same spec: each a (trained session, or
    None for a member that diverged; history) by member label ("" for a single run). The line
    saying every number is the same, or RunFailed naming the first member and what differs."""
    import jax
    import numpy as np

    def numbers(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "epoch_time"} for row in history]

    def params(session: Session | None) -> list:
        return [] if session is None else [np.asarray(leaf) for leaf in jax.tree.leaves(session.state.params)]

    for label, (session, history) in first.items():
        again, history_again = second[label]
        history_same = numbers(history) == numbers(history_again)
        mine, theirs = params(session), params(again)
        params_same = len(mine) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
        if not (history_same and params_same):
            what = " and ".join(w for w, same in (("history", history_same), ("parameters", params_same)) if not same)
            whose = f" of member {label}" if label else ""
            raise RunFailed(f"repeat check: a second run with the same seed gave a different {what}{whose}")
    epochs = sum(len(history) for _, history in first.values())
    if len(first) == 1 and "" in first:
        return f"repeat check: a second run gave the identical history ({epochs} epochs) and parameters"
    return (f"repeat check: a second run of the sweep gave every member's identical history ({epochs} epochs in "
            f"all) and parameters")


# --- using a trained run -----------------------------------------------------------------------


def unloadable(run_dir: str, diagnostics: list) -> RunFailed:
    """Why a run folder whose spec has errors cannot be reloaded."""
    if all(d.code.startswith("E60") for d in diagnostics if d.is_error):
        # A run folder of an older dlc records no facts of its data: reloading it reads the data file.
        return RunFailed(f"`{run_dir}` was written by an older dlc, which reads the data it trained on to reload a "
                         "run, and that data cannot be read: restore it, or train again")
    return RunFailed(f"the spec of `{run_dir}` has errors: was spec.dl edited after the run?")


def _spec_target(session: Session) -> str | None:
    """The label column the run was trained with (`target=` of a CSV source), if any."""
    data = session.program.data
    return data.target if data else None


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, dict[str, float]]  # loss and metrics by split, or by the data file's name
    report: dict | None = None  # with --report: `report.write_report`'s, on the held-out split or the file


def evaluate(session: Session, run_dir: str, data: str | None, target: str | None,
             report: bool = False) -> Evaluation:
    """`dlc eval`: loss and metrics of a trained run on a data file with labels (by its name), or
    on every split of the data it trained on; with `report`, the per-class (or residual) report of
    the file or of the held-out split, its figure written into the run folder."""
    from dlc.runtime import report as reports
    from dlc.runtime.sources import DataError, read_features

    if data is None:
        try:
            metrics = session.evaluate_spec_splits()
        except DataError as e:
            raise RunFailed(f"evaluating the splits of `{run_dir}` reads the data it trained on: {e} "
                            f"(to evaluate on other data: `dlc eval {run_dir} DATA`)") from None
    else:
        x, y, source = read_features(Path(data), target=target or _spec_target(session) or "target",
                                     with_target=True, columns=session.prepared.columns)
        metrics = {Path(data).name: session.evaluate(x, y, source)}
    if not report:
        return Evaluation(metrics)
    if data is None:
        name, split = reports.held_out(session.prepared)
        on = {"split": name}
    else:
        split, on = session.labelled(x, y, source), {"file": Path(data).name}
    return Evaluation(metrics, reports.write_report(session, Path(run_dir), split, on))


def predict(session: Session, inputs: str, target: str | None) -> list[list]:
    """`dlc predict`: the CSV rows of a trained run's predictions for a file of examples."""
    from dlc.runtime.session import prediction_rows
    from dlc.runtime.sources import read_features

    # Columns are found by name (the training CSV itself will do): a label column is never read.
    x, _, source = read_features(Path(inputs), target=target or _spec_target(session),
                                 columns=session.prepared.columns)
    return prediction_rows(session, session.predict(x, source))
