"""`dlc run` of a sweep: claim and lock one folder for the whole sweep, have every member trained
(by the caller, through the API's sweep path: the members train together, vmapped), then write an
ordinary run folder per member, named by its label, and `sweep.csv`, one row per member.

Standard library only at import, as `commands`: the folder is claimed before JAX starts.
"""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlc.runtime.commands import RunFailed, RunInterrupted, RunRefused, RunRequest, locked, made_folder, runtime_errors
from dlc.runtime.options import FitOptions
from dlc.runtime.runlock import RunLock, is_unused, write_atomically

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


def run_sweep(program: ir.Program, request: RunRequest, train: Callable[[FitOptions], Trained]) -> SweepRun:
    """`dlc run` of a sweep: `train(options)` trains every member; each is written as an ordinary
    run folder under the sweep's, with `sweep.csv` beside them. The folder stays locked until the
    sweep is written; a signal stops it at the next epoch, and a sweep keeps no checkpoints."""
    from dlc.runtime.stopping import Interrupted

    if request.stopping():
        raise RunInterrupted("interrupted before the sweep started; nothing was saved")
    out, created, lock = _claim(request, program.name)
    try:
        try:
            trained = train(request.options)
        except Interrupted as e:
            _discard(out, created)
            raise RunInterrupted(f"interrupted at epoch {e.epoch}; a sweep keeps no checkpoints: nothing was "
                                 "saved") from None
        except (ValueError, *runtime_errors()) as e:
            _discard(out, created)
            raise RunFailed(str(e)) from None
        try:
            sweep = program.sweep
            values = itertools.product(*(axis.values for axis in sweep.axes))
            members = [_write_member(out / label, member, session, history, tuple(v))
                       for label, member, v, (session, history)
                       in zip(sweep.labels, sweep.members, values, trained, strict=True)]
            monitor = _monitor(program, members)
            write_atomically(out / "sweep.csv", _csv([a.name for a in sweep.axes], members))
        except runtime_errors() as e:
            raise RunFailed(str(e)) from None
        except OSError as e:
            raise RunFailed(f"cannot write the sweep folder {out}: {e.strerror or e}") from None
        return SweepRun(out, monitor, _ranked(members, monitor, program))
    finally:
        lock.release()


def _claim(request: RunRequest, name: str) -> tuple[Path, bool, RunLock]:
    """The sweep's folder, locked: made new (of two runs started together, only one can), or an
    existing one that is empty; a symbolic link is never written through (the folder must be empty,
    and every file is written with `write_atomically`)."""
    out, created = made_folder(request, name, "sweep")
    if out.is_symlink():
        raise RunRefused(f"{out} is a symbolic link: dlc never writes through one; choose another --out")
    if not out.is_dir():
        raise RunRefused(f"{out} already exists and is not a folder; choose another --out")
    lock = locked(out, request, "sweep")
    if not created and not is_unused(out):  # under the lock: another run may have taken it meanwhile
        lock.release()
        raise RunRefused(f"{out} already exists and is not empty; choose another --out")
    return out, created, lock


def _discard(out: Path, created: bool) -> None:
    """Remove a sweep folder this command made when no member was written: it would block running
    the same command again."""
    if created:
        shutil.rmtree(out, ignore_errors=True)


def _write_member(folder: Path, member: ir.Program, session: Session | None, history: list[dict],
                  values: tuple) -> MemberRun:
    """A member's run folder, as `dlc run` of its written-out spec leaves it: whole when it trained;
    its spec and history when it diverged, as a diverged run's."""
    from dlc.runtime.runfolder import write_history, write_run

    if session is not None:
        return MemberRun(folder.name, values, write_run(folder, session), None)
    folder.mkdir()
    write_atomically(folder / "spec.dl", member.source)
    write_history(folder, history)
    return MemberRun(folder.name, values, None, len(history))


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
