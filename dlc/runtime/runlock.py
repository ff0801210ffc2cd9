"""One writer per run folder. A new folder is claimed by making it (mkdir fails when it exists, so
two runs never both take one name); a run then holds an exclusive `flock` on `.lock` inside it
for as long as it trains. The OS drops the lock when the process dies, however it dies, so the
lock of a killed run is simply taken over: there is no stale lock to clean up. Pure stdlib: the
CLI takes the lock before it imports JAX."""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
from pathlib import Path

LOCK_NAME = ".lock"
_PARTIAL = ".partial"  # suffix of a file being written by write_atomically


class RunLockedError(Exception):
    """Another live process (or another fit in this one) is writing the same run folder."""


class RunLock:
    """An exclusive lock on `folder` (which must exist), held from `acquire` to `release`; the
    lock file records the holder's pid and `command` (default: this process's), for the refusal."""

    def __init__(self, folder: Path, command: str | None = None) -> None:
        self.folder = Path(folder)
        self.command = command or shlex.join(sys.argv)
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        # Never through a link: a `.lock` planted as one would have the lock write what it points at.
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            raise RunLockedError(f"`{self.folder}` is in use by {_describe(holder)}: wait for it to finish "
                                 "or stop it, or choose another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.command}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        # The file stays: unlinking it could let a third process lock a new file while one still
        # holds the old one.
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(holder: str) -> str:
    pid, _, command = holder.partition(" ")
    if not pid.isdigit():  # the holder has locked but not yet written its name
        return "another process"
    who = "this process" if int(pid) == os.getpid() else f"process {pid}"
    return f"{who} (`{command}`)" if command else who


def claim_new_folder(base: Path) -> Path:
    """Make `base`, or `base-2`, `base-3`, ... when another run took the name first."""
    base.parent.mkdir(parents=True, exist_ok=True)
    out, number = base, 1
    while True:
        try:
            out.mkdir()
            return out
        except FileExistsError:
            number += 1
            out = base.with_name(f"{base.name}-{number}")


def is_unused(folder: Path) -> bool:
    """Whether a folder holds nothing but what a claim leaves (its lock, a half-written file)."""
    return all(p.name == LOCK_NAME or (p.name.startswith(".") and p.name.endswith(_PARTIAL))
               for p in folder.iterdir())


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a file whole or not at all: written beside it and renamed over it, so a process killed
    mid-write leaves no truncated copy; never through a symbolic link (O_NOFOLLOW on the new file,
    and a rename replaces a link, not what it points at)."""
    partial = path.with_name(f".{path.name}{_PARTIAL}")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(partial, path)
