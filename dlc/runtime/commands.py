"""What the `dlc` verbs do, apart from parsing and showing: `run` claims and locks a run folder
(refusing one that is not this run's to take, or a resume of a changed spec), sets XLA's flags,
joins a distributed run, trains and writes the folder; `repeat_check` trains again and compares;
`evaluate` and `predict` use a reloaded run. The CLI shows what they return and gives each error
its exit status: `RunRefused` is a usage error, `RunInterrupted` a signal's; `RunFailed` and a
ValueError (the spec's errors, a SpecError, among them) are one line each, as are, from `evaluate`
and `predict`, the `runtime_errors()`, which `run` turns into RunFailed.

Standard library only at import: a run folder is claimed, and XLA's flags set, before JAX starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dlc.runtime.identity import resume_changes, spec_sha256, train_on_hint
from dlc.runtime.options import FitOptions
from dlc.runtime.runlock import LOCK_NAME, RunLock, RunLockedError, claim_new_folder, is_unused, write_atomically
from dlc.runtime.storage import is_step

if TYPE_CHECKING:
    from dlc.compiler import ir
    from dlc.runtime.session import Session, SpecOwner


class RunRefused(Exception):
    """A run folder that is not this run's to take (another run's, the user's, in use, impossible
    to make): a usage error, in one line."""


class RunFailed(Exception):
    """A verb that could not do what it was asked: one line saying why."""


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
class RunRequest:
    """What `dlc run` was asked to do."""

    spec: str  # as named on the command line, for the commands that messages give
    out: Path | None  # None: a new folder under runs/
    options: FitOptions  # epochs, seed, resume, checkpoint interval, devices, should_stop
    deterministic: bool = False  # deterministic GPU kernels
    distributed: bool = False  # join a multi-host run first
    tensorboard: bool = False  # write each epoch's scalars as TensorBoard events into the folder

    def stopping(self) -> bool:
        return self.options.should_stop is not None and self.options.should_stop()


@dataclass(frozen=True)
class RunFolder:
    """A run folder claimed, and locked, for one run."""

    path: Path
    created: bool  # made by this command: removed again if training never starts
    lock: RunLock
    resume: bool  # continue from its checkpoint
    notice: str  # to tell before training ("" for none)
    resume_command: str  # what continues the run once a signal stopped it


@dataclass(frozen=True)
class RunResult:
    folder: Path
    session: Session
    metrics: dict  # as metrics.json holds them
    imports: float  # seconds to import JAX and the runtime (and join a distributed run)


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
    with started(request, lambda asked: _claim(asked, owner.ir.name, owner.ir.source)) as (request, folder, shown):
        display.claimed(folder)
        result = _train(owner, request, folder, display, imports_started)
        return dataclasses.replace(result, folder=shown)


@contextlib.contextmanager
def started(request: RunRequest, claim: Callable[[RunRequest], RunFolder]) -> Iterator[tuple[RunRequest, RunFolder,
                                                                                                Path]]:
    """XLA's flags set, a distributed run joined, and the run folder claimed by `claim` and locked
    while the run goes on: (the request this process runs, its folder, the folder to name).

    In a distributed run (`--distributed`) every process trains the same program; process 0 claims
    the folder asked for and tells the others (or why it could not: then every process stops), who
    run into scratch folders of their own, removed when they end, and name process 0's. Decisions
    a process would take alone (a signal, a checkpoint being due) are taken together."""
    if request.deterministic:  # read by XLA when JAX starts its backend, so set before importing it
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
        os.environ["TF_CUDNN_DETERMINISTIC"] = "1"
    if not request.distributed:
        folder = claim(request)
        try:
            yield request, folder, folder.path
        finally:
            folder.lock.release()
        return
    if request.options.resume:
        raise RunRefused("--resume does not work with --distributed yet: resume the run in one process "
                         "(`dlc run SPEC --out DIR --resume`), or start it again")
    from dlc.runtime import distributed

    try:
        distributed.join()
    except distributed.DistributedError as e:
        raise RunFailed(str(e)) from None
    local_stop = request.options.should_stop or (lambda: False)
    request = dataclasses.replace(request, options=dataclasses.replace(
        request.options, should_stop=lambda: distributed.agreed(local_stop())))
    if distributed.is_writer():
        try:
            folder = claim(request)
        except (RunRefused, RunFailed) as e:
            distributed.from_writer(f"refused:{e}")
            raise
        distributed.from_writer(f"ok:{folder.path}")
        try:
            yield request, folder, folder.path
        finally:
            folder.lock.release()
        return
    status, _, told = distributed.from_writer("").partition(":")
    if status != "ok":
        raise RunFailed(f"process 0 could not start the run: {told}")
    scratch = Path(tempfile.mkdtemp(prefix=f"dlc-process-{distributed.process_index()}-"))
    try:
        own = dataclasses.replace(request, out=scratch / "run")
        # What continues the run after a signal is process 0's folder, resumed (in one process).
        folder = dataclasses.replace(claim(own), resume_command=_resume_command(request, Path(told)))
        try:
            yield own, folder, Path(told)
        finally:
            folder.lock.release()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    return RunResult(folder.path, session, metrics, imports)


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
        _discard_unstarted(folder.path, folder.created)
        raise


def _interrupted(folder: RunFolder, epoch: int | None = None) -> RunInterrupted:
    """What a signal kept of a run, and the command that continues it."""
    if _has_checkpoint(folder.path):
        after = f" after epoch {epoch}" if epoch else ""
        line = f"interrupted{after}; the run is saved. Continue it with:"
    else:
        line = "interrupted before the first checkpoint. Start the run again with:"
    return RunInterrupted(f"{line}\n  {folder.resume_command}")


def repeat_check(owner: SpecOwner, first: Session) -> str:
    """`dlc run --repeat-check`: train the same spec with the same seed again and compare every
    number: history (all but the timings) and final parameters, bit for bit. The line saying so,
    or RunFailed naming what differs."""
    from dlc.runtime.session import Session

    second = Session.fit(owner, None, None, None, FitOptions(epochs=first.program.epochs, seed=first.program.seed))
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


# --- claiming a run folder -------------------------------------------------------------------


def made_folder(request: RunRequest, name: str, what: str, make: bool = True) -> tuple[Path, bool]:
    """The folder `--out` names (default runs/NAME-TIMESTAMP, claimed by making it: of two runs
    started together, only one can), made when `make` and missing; and whether this made it."""
    out = request.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        if request.out is None:
            return claim_new_folder(out), True
        if make:
            out.mkdir(parents=True)
            return out, True
    except FileExistsError:
        pass
    except OSError as e:
        raise RunRefused(f"cannot create the {what} folder {out}: {e.strerror or e}") from None
    return out, False


def locked(out: Path, request: RunRequest, what: str) -> RunLock:
    """`out`'s lock, held; a folder another run holds is refused at once, naming it."""
    lock = RunLock(out, command=shlex.join(["dlc", "run", request.spec, "--out", str(out)]))
    try:
        lock.acquire()
    except RunLockedError as e:
        raise RunRefused(str(e)) from None
    except OSError as e:
        raise RunRefused(f"cannot lock the {what} folder {out}: {e.strerror or e}") from None
    return lock


def _claim(request: RunRequest, name: str, text: str) -> RunFolder:
    """The run folder, locked for this run. A new folder is claimed by making it (of two runs
    started together, only one can); an existing one is taken only if empty, or to resume it. A
    folder another run holds is refused at once, naming it."""
    resume = request.options.resume
    out, created = made_folder(request, name, "run", make=not resume)
    if not out.is_dir():
        if resume:
            raise RunFailed(f"nothing to resume in `{out}`: it has no spec.dl")
        raise RunRefused(f"{out} already exists and is not a folder; choose another --out")
    if not created and not (out / LOCK_NAME).exists():
        _check_claimable(resume, out, text, request.spec)  # not a run's folder: refused before a lock file is left in it
    lock = locked(out, request, "run")
    command = _resume_command(request, out)
    try:
        if not created:
            _check_claimable(resume, out, text, request.spec)  # under the lock: another run may have taken it meanwhile
        if resume:
            checkpointed = _has_checkpoint(out)  # if not, it was stopped before its first one: nothing to lose
            notice = "" if checkpointed else f"{out} has no complete checkpoint: training it from the start"
            return RunFolder(out, False, lock, checkpointed, notice, command)
        try:
            write_atomically(out / "spec.dl", text)
        except OSError as e:
            raise RunRefused(f"cannot create the run folder {out}: {e.strerror or e}") from None
        return RunFolder(out, created, lock, False, "", command)
    except (RunRefused, RunFailed):
        _discard_unstarted(out, created)
        lock.release()
        raise


def _resume_command(request: RunRequest, out: Path) -> str:
    overrides = (("epochs", request.options.epochs), ("seed", request.options.seed))
    return shlex.join(["dlc", "run", request.spec, "--out", str(out), "--resume",
                       *(a for k, v in overrides if v is not None for a in (f"--{k}", str(v)))])


def _check_claimable(resume: bool, out: Path, text: str, spec: str) -> None:
    """Refuse an existing folder that is not this run's to take: to resume, it must hold this spec
    (`spec`, as the command line names it, for the hint of a refusal); otherwise it must be empty
    (else it is another run's, or the user's)."""
    if resume:
        try:
            started = (out / "spec.dl").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise RunFailed(f"nothing to resume in `{out}`: it has no spec.dl") from None
        # The spec is what can be told before JAX starts; its seed and epochs, from the checkpoint, after.
        if resume_changes({"spec_sha256": spec_sha256(started)}, {"spec_sha256": spec_sha256(text)}):
            raise RunFailed(f"cannot resume `{out}`: the spec changed since the run started: "
                            f"{_spec_changes(started, text)}; {train_on_hint(out, spec)}")
    elif is_unused(out):
        return
    elif (out / "spec.dl").is_file() and not _has_checkpoint(out):
        raise RunRefused(f"{out} holds a run stopped before its first checkpoint: --resume trains it from the "
                         "start (or choose another --out)")
    else:
        raise RunRefused(f"{out} already exists and is not empty; choose another --out (or --resume it)")


def _spec_changes(before: str, after: str) -> str:
    """The first lines that differ between two versions of a spec, for a refused resume."""
    import difflib

    old, new = before.splitlines(), after.splitlines()
    changes = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if tag != "equal":
            was = _shortened("; ".join(old[i1:i2])) or "nothing"
            now = _shortened("; ".join(new[j1:j2])) or "nothing"
            changes.append(f"line {i1 + 1}: `{was}` became `{now}`")
    return ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")


def _shortened(line: str, limit: int = 60) -> str:
    """A changed line as a refused resume quotes it: long ones cut, so that the hint after them
    stays within the one line an error is shown in."""
    return line if len(line) <= limit else f"{line[:limit - 3]}..."


def _has_checkpoint(out: Path) -> bool:
    """Whether a run folder holds a checkpoint step, as resuming counts them (a stray `1000` is none)."""
    training = out / "training"
    return training.is_dir() and any(is_step(p) for p in training.iterdir())


def _discard_unstarted(out: Path, created: bool) -> None:
    """Remove a run folder this command made when training never started: it holds only the spec's
    copy, its lock (and an empty checkpoint folder), and would block running the same command again."""
    if created and not _has_checkpoint(out):
        shutil.rmtree(out, ignore_errors=True)


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
