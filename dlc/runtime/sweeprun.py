"""`dlc run` of a sweep: claim and lock one folder for the whole sweep, have every member trained
(by the caller, through the API's sweep path: the members train together, vmapped, checkpointed
into DIR/training), then write an ordinary run folder per member, named by its label,
`sweep.csv`, one row per member, and `sweep.png`, their validation curves.

Standard library only at import, as `commands`: the folder is claimed before JAX starts.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlc.runtime.claims import (
    RunFailed,
    RunFolder,
    RunRefused,
    RunRequest,
    locked,
    made_folder,
    resume_command,
    spec_changes,
    started,
)
from dlc.runtime.commands import RunDisplay, RunInterrupted, runtime_errors, tracked
from dlc.runtime.identity import spec_sha256
from dlc.runtime.options import FitOptions
from dlc.runtime.runlock import LOCK_NAME, RunLockedError, is_unused, write_atomically
from dlc.runtime.storage import is_step

if TYPE_CHECKING:
    from dlc.compiler import ir
    from dlc.runtime.session import Session

# What training a sweep gives for each member, in its order: its trained session (None when it
# diverged) and its history (a diverged member's ends with the epoch it diverged at).
Trained = list[tuple["Session | None", list[dict]]]


@dataclass(frozen=True)
class MemberRun:
    label: str  # also its folder's name under the sweep's
    values: tuple  # the swept values, in the order of the axes
    metrics: dict | None  # as its metrics.json holds them; None when it diverged
    diverged_at: int | None  # the epoch it diverged at


@dataclass(frozen=True)
class SweepRun:
    folder: Path
    monitor: str  # what the members are ranked by
    members: list[MemberRun]  # ranked, best first; diverged ones last

    @property
    def trained(self) -> int:
        return sum(m.metrics is not None for m in self.members)

    def score(self, member: MemberRun) -> float | None:
        """The member's value of the monitor; None when it diverged or has none."""
        return None if member.metrics is None else _score(member.metrics, self.monitor)


def run_sweep(program: ir.Program, request: RunRequest, train: Callable[[FitOptions], Trained],
              display: RunDisplay) -> SweepRun:
    """`dlc run` of a sweep: `train(options)` trains every member, checkpointing every group into
    DIR/training after epochs (with `--resume`, going on from there); each member is then written
    as an ordinary run folder under the sweep's, with `spec.dl`, `sweep.csv` and `sweep.png`
    beside them. The folder stays locked until the sweep is written; a signal stops it at the
    end of an epoch, saved."""

    if request.stopping():
        raise RunInterrupted("interrupted before the sweep started; nothing was saved")
    with started(request, lambda asked: _claim(asked, program.name, program.source)) as (request, folder, shown):
        sweep_run = _trained(program, request, folder, train, display)
        return dataclasses.replace(sweep_run, folder=shown)


def _trained(program: ir.Program, request: RunRequest, folder: RunFolder, train: Callable[[FitOptions], Trained],
             display: RunDisplay) -> SweepRun:
    """Train the sweep's members into its claimed folder, and write every member's folder."""
    from dlc.runtime.stopping import Interrupted

    out = folder.path
    display.claimed(folder)
    options = dataclasses.replace(request.options, checkpoint_dir=out / "training", resume=folder.resume)
    try:
        with display.training() as (shown, on_compiled), \
                tracked(request, out, shown, list(program.sweep.labels)) as on_epoch:
            trained = train(dataclasses.replace(options, on_epoch=on_epoch, on_compiled=on_compiled))
    except Interrupted as e:
        raise _interrupted(folder, e.epoch) from None
    except RunLockedError as e:  # its checkpoint folder, by a fit of the API
        raise RunRefused(str(e)) from None
    except (ValueError, *runtime_errors()) as e:
        from dlc.runtime.session import ResumeError

        if isinstance(e, ResumeError):  # another seed or number of epochs than the checkpoints'
            raise RunFailed(f"{str(e).replace('cannot resume:', f'cannot resume `{out}`:', 1)}; "
                            f"{_AS_STARTED}") from None
        _discard(folder)
        raise RunFailed(str(e)) from None
    try:
        sweep = program.sweep
        values = itertools.product(*(axis.values for axis in sweep.axes))
        members = [_write_member(out / label, member, session, history, tuple(v))
                   for label, member, v, (session, history)
                   in zip(sweep.labels, sweep.members, values, trained, strict=True)]
        monitor = _monitor(program, members)
        ranked = _ranked(members, monitor, program)
        write_atomically(out / "sweep.csv", _csv([a.name for a in sweep.axes], members))
        _write_plot(out, program.name, monitor, ranked, dict(zip(sweep.labels, trained, strict=True)))
    except runtime_errors() as e:
        raise RunFailed(str(e)) from None
    except OSError as e:
        raise RunFailed(f"cannot write the sweep folder {out}: {e.strerror or e}") from None
    if request.stopping():  # while the member folders were written, which were finished first
        raise RunInterrupted(f"interrupted as the sweep finished; its folder is complete: {out}")
    return SweepRun(out, monitor, ranked)


def _claim(request: RunRequest, name: str, text: str) -> RunFolder:
    """The sweep's folder, locked: made new (of two runs started together, only one can), or an
    existing one that is empty, its spec written into it; with `--resume`, one holding this spec.
    A symbolic link is never written through (the folder must be empty, and every file is
    written with `write_atomically`)."""
    resume = request.options.resume
    out, created = made_folder(request, name, "sweep", make=not resume)
    if out.is_symlink():
        raise RunRefused(f"{out} is a symbolic link: dlc never writes through one; choose another --out")
    if not out.is_dir():
        if resume:
            raise RunFailed(f"nothing to resume in `{out}`: it has no spec.dl")
        raise RunRefused(f"{out} already exists and is not a folder; choose another --out")
    if not created and not (out / LOCK_NAME).exists():
        _check_claimable(resume, out, text)  # not a sweep's folder: refused before a lock file is left in it
    lock = locked(out, request, "sweep")
    try:
        if not created:
            _check_claimable(resume, out, text)  # under the lock: another run may have taken it meanwhile
        if resume:
            saved = saved_any(out / "training")
            notice = "" if saved else f"{out} has no complete checkpoint: training the sweep from the start"
            return RunFolder(out, False, lock, saved, notice, resume_command(request, out))
        write_atomically(out / "spec.dl", text)
        return RunFolder(out, created, lock, False, "", resume_command(request, out))
    except OSError as e:
        lock.release()
        raise RunRefused(f"cannot create the sweep folder {out}: {e.strerror or e}") from None
    except (RunRefused, RunFailed):
        lock.release()
        raise


def _check_claimable(resume: bool, out: Path, text: str) -> None:
    """Refuse an existing folder: to resume, one that holds another spec; else one that is not empty."""
    if resume:
        _same_spec(out, text)
    elif not is_unused(out):
        raise RunRefused(f"{out} already exists and is not empty; choose another --out (or --resume it)")


# What a refused resume of a sweep says to do instead.
_AS_STARTED = ("--resume only finishes a sweep as it started (spec, seeds, epochs): to train it otherwise, run it "
               "without --resume into another --out")


def _same_spec(out: Path, text: str) -> None:
    """Refuse to resume a folder that holds no spec, or another one than `text`, naming the lines
    that changed."""
    try:
        started = (out / "spec.dl").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise RunFailed(f"nothing to resume in `{out}`: it has no spec.dl") from None
    if spec_sha256(started) != spec_sha256(text):
        raise RunFailed(f"cannot resume `{out}`: the spec changed since the sweep started: "
                        f"{spec_changes(started, text)}; {_AS_STARTED}")


def saved_any(training: Path) -> bool:
    """Whether a sweep's checkpoint folder holds a complete step of any group or member (see
    `sweepsave`: a folder of steps per group and per member trained alone)."""
    return training.is_dir() and not training.is_symlink() and any(
        part.is_dir() and not part.is_symlink() and any(is_step(p) for p in part.iterdir())
        for part in training.iterdir())


def _interrupted(folder: RunFolder, epoch: int) -> RunInterrupted:
    """What a signal kept of a sweep, and the command that continues it."""
    if saved_any(folder.path / "training"):
        return RunInterrupted(f"interrupted after epoch {epoch}; the sweep is saved. Continue it with:\n"
                              f"  {folder.resume_command}")
    _discard(folder)
    again = folder.resume_command.replace(" --resume", "", 1)
    return RunInterrupted(f"interrupted before the first checkpoint; nothing was saved. Start the sweep again "
                          f"with:\n  {again}")


def _discard(folder: RunFolder) -> None:
    """Undo the claim of a sweep that saved nothing: a folder this command made is removed, and
    what it wrote into an existing one (the spec, an empty checkpoint folder), so that the same
    command can run again."""
    if saved_any(folder.path / "training"):
        return
    if folder.created:
        shutil.rmtree(folder.path, ignore_errors=True)
    elif not folder.resume:
        (folder.path / "spec.dl").unlink(missing_ok=True)
        shutil.rmtree(folder.path / "training", ignore_errors=True)


def _write_member(folder: Path, member: ir.Program, session: Session | None, history: list[dict],
                  values: tuple) -> MemberRun:
    """A member's run folder, as `dlc run` of its written-out spec leaves it: whole when it trained;
    its spec and history when it diverged, as a diverged run's."""
    from dlc.runtime.runfolder import refuse_links, write_history, write_run

    if session is not None:
        return MemberRun(folder.name, values, write_run(folder, session), None)
    folder.mkdir(exist_ok=True)  # exists when a finished sweep is resumed: written again
    refuse_links(folder)
    write_atomically(folder / "spec.dl", member.source)
    write_history(folder, history)
    return MemberRun(folder.name, values, None, len(history))


def _write_plot(out: Path, name: str, monitor: str, ranked: list[MemberRun], trained: dict) -> None:
    """sweep.png: every member's monitor per epoch, the best member emphasized."""
    from dlc.runtime.plots import sweep_figure
    from dlc.runtime.runfolder import write_figure

    curves = [(m.label, trained[m.label][1], m.metrics is None) for m in ranked if trained[m.label][1]]
    if curves:
        best = ranked[0].label if ranked[0].metrics is not None else None
        write_figure(out, "sweep.png", sweep_figure(curves, monitor, name, best), kept="the member folders and "
                     "sweep.csv are written")


def _monitor(program: ir.Program, members: list[MemberRun]) -> str:
    """What ranks the members: the early-stopping monitor, else `val_loss` where the members have a
    validation split, else `loss`."""
    if program.early_stop is not None:
        return program.early_stop.monitor
    return "val_loss" if any("val" in (m.metrics or {}) for m in members) else "loss"


def _score(metrics: dict, monitor: str) -> float | None:
    """The monitor's value among a member's final metrics: `val_x` is split `val`'s `x`, others train's."""
    split, name = ("val", monitor[4:]) if monitor.startswith("val_") else ("train", monitor)
    return metrics.get(split, {}).get(name)


def _ranked(members: list[MemberRun], monitor: str, program: ir.Program) -> list[MemberRun]:
    """Best first, by the early stop's `mode` (else smallest first, as for a loss); members without
    the monitor, then diverged ones, last."""
    sign = -1 if program.early_stop is not None and program.early_stop.mode == "max" else 1

    def key(member: MemberRun) -> tuple:
        score = None if member.metrics is None else _score(member.metrics, monitor)
        return (member.metrics is None, score is None, 0.0 if score is None else sign * score)

    return sorted(members, key=key)


def _csv(axes: list[str], members: list[MemberRun]) -> str:
    """sweep.csv: a member per row, its swept values, `epochs_run`, `best_epoch`, and every split's
    loss and metrics (`train_loss`, `val_accuracy`, ...); a diverged member's metrics left empty."""
    columns: list[str] = []
    for member in members:
        for split, values in (member.metrics or {}).items():
            if isinstance(values, dict):
                columns += [c for c in (f"{split}_{name}" for name in values) if c not in columns]
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*axes, "epochs_run", "best_epoch", *columns])
    for member in members:
        metrics = member.metrics or {}
        flat = {f"{split}_{name}": v for split, values in metrics.items() if isinstance(values, dict)
                for name, v in values.items()}
        epochs = metrics.get("epochs_run", member.diverged_at)
        writer.writerow([*member.values, epochs, metrics.get("best_epoch", ""),
                         *(repr(flat[c]) if c in flat else "" for c in columns)])
    return text.getvalue()
