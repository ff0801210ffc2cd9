"""Writing to storage, for run folders and training checkpoints alike: Orbax, quieted (dlc reports
each failure in one line), a failed write as one `StorageError` line naming the path, the reason
and what was kept, and never a write through a symbolic link."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class RunFolderError(Exception):
    """A run folder that cannot be read back: one line naming what is missing or broken."""


class StorageError(RunFolderError):
    """A run folder that cannot be written (disk full, read-only, a part of it gone): one line
    naming the path, the reason, and what was kept."""


# How a failed write is told, when only the text of an error (Orbax's, tensorstore's) carries it.
REASONS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EIO)


def storage_reason(error: BaseException) -> str:
    """Why a write failed, in a few words: from an OSError, or from the text of the errors Orbax
    and tensorstore wrap one in (hundreds of characters of JSON)."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    text = str(error)
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        return os.strerror(int(code.group(1)))
    for number in REASONS:
        if os.strerror(number).lower() in text.lower():
            return os.strerror(number)
    lines = text.strip().splitlines()
    return (lines[0][:160] if lines else "") or type(error).__name__


def quiet_orbax() -> None:
    """Orbax logs every failure of its background threads with a traceback (and a warning when it
    clears a step a killed process left half-written), and after a failed save tensorstore's
    callbacks print `Event loop is closed` tracebacks as they find Orbax's loop gone; dlc reports
    each failure in one line."""
    import absl.logging

    absl.logging.set_verbosity(absl.logging.FATAL)
    if not getattr(sys.unraisablehook, "drops_closed_loops", False):
        sys.unraisablehook = _dropping_closed_loops(sys.unraisablehook)
    tasks = logging.getLogger("asyncio")
    if not any(isinstance(f, _OrbaxTasks) for f in tasks.filters):
        tasks.addFilter(_OrbaxTasks())


class _OrbaxTasks(logging.Filter):
    """Drops asyncio's `Task (or Future) exception was never retrieved` for Orbax's, which a
    failed save leaves behind (the failure itself is reported): raised in Orbax's code, or about
    the temporary folder of a step."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        frames = traceback.extract_tb(error.__traceback__)
        return not (any(f"{os.sep}orbax{os.sep}" in frame.filename for frame in frames)
                    or ".orbax-checkpoint-tmp" in str(error))


def _dropping_closed_loops(previous: Callable) -> Callable:
    def hook(unraisable) -> None:
        if not (unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    hook.drops_closed_loops = True
    return hook


def orbax() -> Any:
    """`orbax.checkpoint`, imported on first use and quieted."""
    import orbax.checkpoint as ocp

    quiet_orbax()
    return ocp


def writing_alone(ocp: Any) -> dict[str, Any]:
    """Orbax's options for checkpoints this process writes (or reads) by itself: none in one
    process. In a distributed run every process has a folder of its own (process 0 the run's, the
    others scratch ones) and hands Orbax host copies of the arrays, so no process waits on
    another's writes; the keys Orbax keeps in JAX's coordination service are this process's own
    (its signal that a step's folder exists is not, so folders are made before the write)."""
    from dlc.runtime.distributed import process_index, processes

    if processes() == 1:
        return {}
    index = process_index()
    return {"multiprocessing_options": ocp.options.MultiprocessingOptions(
                primary_host=index, active_processes={index}, barrier_sync_key_prefix=f"dlc-process-{index}"),
            "async_options": ocp.options.AsyncOptions(create_directories_asynchronously=False)}


def host_copies(tree: Any) -> Any:
    """`tree` as Orbax is given it: as it is, or in a distributed run its arrays fetched to the host
    (gathered first where split over processes, a step every process takes)."""
    from dlc.runtime.devices import fetch
    from dlc.runtime.distributed import processes

    if processes() == 1:
        return tree

    return fetch(tree)


def refuse_link(path: Path, hint: str = "") -> None:
    """Refuse to write or delete through `path` when it is a symbolic link: that would change
    whatever it points at, outside the run. `hint` follows the message (`; replace it ...`)."""
    if path.is_symlink():
        raise RunFolderError(f"`{path}` is a symbolic link: dlc never writes or deletes through one{hint}")


@contextlib.contextmanager
def storage_faults(path: Path, kept: str | Callable[[], str], what: str | None = None,
                   on_fault: Callable[[], None] | None = None) -> Iterator[None]:
    """A failed write below as one StorageError naming `path` (`what` in it, when given) and what
    was `kept` (or a function that says so once the write has failed); `on_fault` is called first.
    Orbax and tensorstore wrap an OSError in other types, so every error of the write is one."""
    try:
        yield
    except RunFolderError:
        raise
    except Exception as e:
        if on_fault is not None:
            on_fault()
        target = f"{what} in `{path}`" if what else f"`{path}`"
        kept = kept() if callable(kept) else kept
        raise StorageError(f"cannot write {target}: {storage_reason(e)}; {kept}") from None


def save_checkpoint(path: Path, state_tree: dict) -> None:
    """`state_tree` as an Orbax checkpoint in the folder `path`, replacing what is there."""
    ocp = orbax()
    refuse_link(path)
    if path.exists():
        shutil.rmtree(path)
    with ocp.StandardCheckpointer(**writing_alone(ocp)) as checkpointer:
        checkpointer.save(path.absolute(), host_copies(state_tree))
        checkpointer.wait_until_finished()


def restore_checkpoint(path: Path, target: dict) -> dict:
    """The Orbax checkpoint in the folder `path`, shaped as `target`."""
    ocp = orbax()
    with ocp.StandardCheckpointer(**writing_alone(ocp)) as checkpointer:
        return checkpointer.restore(path.absolute(), target)


ORBAX_PARTS = ("meta", "state", "_CHECKPOINT_METADATA")  # what each step folder Orbax writes holds


def is_step(path: Path) -> bool:
    """A step Orbax wrote: a folder (not a link) named by its epoch, holding Orbax's parts. Anything
    else under training/ (a stray `1000` file or empty folder, notes) is no step and left alone."""
    return (path.name.isdigit() and not path.is_symlink() and path.is_dir()
            and any((path / part).exists() for part in ORBAX_PARTS))
