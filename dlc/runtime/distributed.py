"""Joining a multi-process run (one process per host, JAX's "multi-controller" model): where the
coordinator is, how many processes there are and which one this is, from the environment; which
process writes what every process computed alike; and the decisions one process would take alone
that all take together (each a collective step every process takes at the same point).

Imported only once a run has asked for JAX: `commands` joins before JAX starts a device."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils

ENVIRONMENT = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


class DistributedError(Exception):
    """A distributed run that cannot be joined: one line saying why."""


def join() -> None:
    """`jax.distributed.initialize` with the coordinator address, the number of processes and this
    process's id from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID where they are
    set (JAX itself reads only the first), else what JAX detects of a cluster scheduler (SLURM,
    Open MPI, Kubernetes, Cloud TPU). On CPUs the processes' collectives are JAX's gloo."""
    counts = {}
    for name, argument in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        value = os.environ.get(name)
        if value is None:
            continue
        if not value.strip().isdigit():
            raise DistributedError(f"cannot join the distributed run: {name}={value!r} is not a whole number")
        counts[argument] = int(value)
    if "num_processes" in counts and counts.get("process_id", 0) >= counts["num_processes"]:
        raise DistributedError(f"cannot join the distributed run: JAX_PROCESS_ID={counts['process_id']} is not "
                               f"below JAX_NUM_PROCESSES={counts['num_processes']} (ids count from 0)")
    # JAX's preemption service would take SIGTERM from dlc, whose own handling already stops every
    # process at the end of the same epoch, saved (`agreed`).
    jax.config.update("jax_enable_preemption_service", False)
    try:
        jax.distributed.initialize(**counts)
    except (RuntimeError, ValueError) as e:
        unset = [name for name in ENVIRONMENT if name not in os.environ]
        hint = f" (not set: {', '.join(unset)}; see docs/scaling.md)" if unset else ""
        raise DistributedError(f"cannot join the distributed run: {str(e).splitlines()[0]}{hint}") from None


def processes() -> int:
    """How many processes this run has: 1 unless it joined a distributed run (asked without
    starting JAX's backend, which a process that has not joined may not be able to start)."""
    return jax.process_count() if jax.distributed.is_initialized() else 1


def process_index() -> int:
    return jax.process_index()


def is_writer() -> bool:
    """Whether this process writes the run folder: process 0. Every process trains the same
    program on the same data (each loads and splits it itself), so each could; the others write
    into a scratch folder of their own, removed when they end, so that every process takes the
    same steps (a collective step taken by one process alone would wait forever)."""
    return process_index() == 0


MESSAGE_BYTES = 8192  # the most a process's message may hold (a path, or a one-line error)


def messages(message: str) -> list[str]:
    """Every process's `message`, in process order, on every process (a collective step in a
    distributed run; the message alone otherwise)."""
    if processes() == 1:
        return [message]
    data = message.encode("utf-8")[:MESSAGE_BYTES - 4]
    buffer = np.zeros(MESSAGE_BYTES, np.uint8)
    buffer[:4] = np.frombuffer(np.uint32(len(data)).tobytes(), np.uint8)
    buffer[4:4 + len(data)] = np.frombuffer(data, np.uint8)
    told = np.asarray(multihost_utils.process_allgather(buffer)).reshape(processes(), MESSAGE_BYTES)
    lengths = [int(np.frombuffer(row[:4].tobytes(), np.uint32)[0]) for row in told]
    return [row[4:4 + n].tobytes().decode("utf-8", errors="replace") for row, n in zip(told, lengths, strict=True)]


def from_writer(message: str) -> str:
    """Process 0's `message`, on every process (each passes its own; only process 0's counts): how
    process 0 claimed the run folder, which the others wait for before training."""
    return messages(message)[0]


@contextlib.contextmanager
def together() -> Iterator[None]:
    """A block every process runs, with no collective step in it (reading and preparing the data,
    the memory guard), that fails for all if it fails for one: where a file is missing on one
    host, or its memory is short, that process raises its error and the others a DistributedError
    naming it, instead of waiting forever for it at the next collective step."""
    if processes() == 1:
        yield
        return
    failure: Exception | None = None
    try:
        yield
    except Exception as e:
        failure = e
    told = messages("" if failure is None else str(failure).splitlines()[0] if str(failure) else type(failure).__name__)
    if failure is not None:
        raise failure
    for index, message in enumerate(told):
        if message:
            raise DistributedError(f"process {index} of the distributed run stopped: {message}")


def same_everywhere(source: str, *arrays: np.ndarray) -> None:
    """Refuse a distributed run whose processes would train on different things: each builds its
    own devices' parts of every array from its own copy, so a data file that differs between
    hosts (with the same shapes) would train silently on a mix. Compares a digest of the spec's
    text (`source`) and the prepared `arrays`; a collective step in a distributed run."""
    if processes() == 1:
        return
    digest = hashlib.blake2b(source.encode("utf-8"), digest_size=16)
    for array in arrays:
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    told = messages(digest.hexdigest())
    different = [index for index, theirs in enumerate(told) if theirs != told[0]]
    if different:
        raise DistributedError(f"process {different[0]} of the distributed run prepared other data or another spec "
                               "than process 0: every process must read the same spec and the same data files")


def agreed(flag: bool) -> bool:
    """`flag` from every process, true when any has it: a decision each process would make on its
    own (a signal it received, a clock saying a checkpoint is due) that all must take together.
    A collective step in a distributed run; the flag itself otherwise."""
    if processes() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def least(budget: int | None) -> int | None:
    """The smallest of every process's data budget (bytes, None for none known): each host has its
    own free memory, and all must place the data alike, since they run one program. A collective
    step in a distributed run; the budget itself otherwise."""
    if processes() == 1:
        return budget
    budgets = multihost_utils.process_allgather(np.asarray(-1 if budget is None else budget, np.int64))
    known = [int(b) for b in np.ravel(budgets) if b >= 0]
    return min(known) if known else None
