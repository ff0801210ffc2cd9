"""Claiming a run's (or a sweep's) folder for `dlc run`, and starting the run's processes on it:
the folder `--out` names (or a new one under runs/), made or taken only if empty (or to resume
it, holding the same spec), locked while the run goes on; XLA's flags set, and a distributed run
joined, process 0 claiming the folder and the others training into scratch folders of their
own. The errors a claim raises, and the request and folder every verb's run passes on.

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
from dataclasses import dataclass
from pathlib import Path

from dlc.runtime.identity import resume_changes, spec_sha256, train_on_hint
from dlc.runtime.options import FitOptions
from dlc.runtime.runlock import LOCK_NAME, RunLock, RunLockedError, claim_new_folder, is_unused, write_atomically
from dlc.runtime.storage import is_step


class RunRefused(Exception):
    """A run folder that is not this run's to take (another run's, the user's, in use, impossible
    to make): a usage error, in one line."""


class RunFailed(Exception):
    """A verb that could not do what it was asked: one line saying why."""


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
    if request.options.devices not in (None, "all"):
        raise RunRefused(f"--devices {request.options.devices} with --distributed: a distributed run trains on "
                         "every device of every process; leave --devices out, or give --devices all")
    from dlc.runtime import distributed

    try:
        distributed.join()
    except distributed.DistributedError as e:
        raise RunFailed(str(e)) from None
    local_stop = request.options.should_stop or (lambda: False)
    request = dataclasses.replace(request, options=dataclasses.replace(
        request.options, devices="all", should_stop=lambda: distributed.agreed(local_stop())))
    if distributed.is_writer():
        try:
            folder = claim(request)
        except (RunRefused, RunFailed) as e:
            distributed.from_writer(f"{type(e).__name__}:{e}")
            raise
        distributed.from_writer(f"ok:{folder.path}")
        try:
            yield request, folder, folder.path
        finally:
            folder.lock.release()
        return
    status, _, told = distributed.from_writer("").partition(":")
    if status != "ok":  # the same error, and so the same exit status, as process 0's
        raise (RunRefused if status == RunRefused.__name__ else RunFailed)(f"process 0 could not start the run: "
                                                                          f"{told}")
    scratch = Path(tempfile.mkdtemp(prefix=f"dlc-process-{distributed.process_index()}-"))
    try:
        own = dataclasses.replace(request, out=scratch / "run")
        # What continues the run after a signal is process 0's folder, resumed (in one process).
        folder = dataclasses.replace(claim(own), resume_command=resume_command(request, Path(told)))
        try:
            yield own, folder, Path(told)
        finally:
            folder.lock.release()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


def claim_run(request: RunRequest, name: str, text: str) -> RunFolder:
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
    command = resume_command(request, out)
    try:
        if not created:
            _check_claimable(resume, out, text, request.spec)  # under the lock: another run may have taken it meanwhile
        if resume:
            checkpointed = has_checkpoint(out)  # if not, it was stopped before its first one: nothing to lose
            notice = "" if checkpointed else f"{out} has no complete checkpoint: training it from the start"
            return RunFolder(out, False, lock, checkpointed, notice, command)
        try:
            write_atomically(out / "spec.dl", text)
        except OSError as e:
            raise RunRefused(f"cannot create the run folder {out}: {e.strerror or e}") from None
        return RunFolder(out, created, lock, False, "", command)
    except (RunRefused, RunFailed):
        discard_unstarted(out, created)
        lock.release()
        raise


def resume_command(request: RunRequest, out: Path) -> str:
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
                            f"{spec_changes(started, text)}; {train_on_hint(out, spec)}")
    elif is_unused(out):
        return
    elif (out / "spec.dl").is_file() and not has_checkpoint(out):
        raise RunRefused(f"{out} holds a run stopped before its first checkpoint: --resume trains it from the "
                         "start (or choose another --out)")
    else:
        raise RunRefused(f"{out} already exists and is not empty; choose another --out (or --resume it)")


def spec_changes(before: str, after: str) -> str:
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


def has_checkpoint(out: Path) -> bool:
    """Whether a run folder holds a checkpoint step, as resuming counts them (a stray `1000` is none)."""
    training = out / "training"
    return training.is_dir() and any(is_step(p) for p in training.iterdir())


def discard_unstarted(out: Path, created: bool) -> None:
    """Remove a run folder this command made when training never started: it holds only the spec's
    copy, its lock (and an empty checkpoint folder), and would block running the same command again."""
    if created and not has_checkpoint(out):
        shutil.rmtree(out, ignore_errors=True)
