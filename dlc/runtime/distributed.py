"""Joining a multi-process run (one process per host, JAX's "multi-controller" model): where the
coordinator is, how many processes there are and which one this is, from the environment, and
which process writes what every process computed alike."""

from __future__ import annotations

import os

ENVIRONMENT = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


class DistributedError(Exception):
    """A distributed run that cannot be joined: one line saying why."""


def join() -> None:
    """`jax.distributed.initialize` with the coordinator address, the number of processes and this
    process's id from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID where they are
    set (JAX itself reads only the first), else what JAX detects of a cluster scheduler (SLURM,
    Open MPI, Kubernetes, Cloud TPU). On CPUs the processes' collectives are JAX's gloo."""
    import jax

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
    """How many processes this run has (1 unless it joined a distributed run)."""
    import jax

    return jax.process_count()


def process_index() -> int:
    import jax

    return jax.process_index()


def is_writer() -> bool:
    """Whether this process writes the run folder: process 0. Every process trains the same
    program on the same data (each loads and splits it itself), so each could; the others write
    into a scratch folder of their own, removed when they end, so that every process takes the
    same steps (a collective step taken by one process alone would wait forever)."""
    return process_index() == 0


MESSAGE_BYTES = 8192  # the most a message from process 0 may hold (a path, or a one-line refusal)


def from_writer(message: str) -> str:
    """Process 0's `message`, on every process (each passes its own; only process 0's counts): how
    process 0 claimed the run folder, which the others wait for before training. A collective
    step in a distributed run."""
    if processes() == 1:
        return message
    import numpy as np
    from jax.experimental import multihost_utils

    data = message.encode("utf-8")[:MESSAGE_BYTES - 4]
    buffer = np.zeros(MESSAGE_BYTES, np.uint8)
    buffer[:4] = np.frombuffer(np.uint32(len(data)).tobytes(), np.uint8)
    buffer[4:4 + len(data)] = np.frombuffer(data, np.uint8)
    told = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    length = int(np.frombuffer(told[:4].tobytes(), np.uint32)[0])
    return told[4:4 + length].tobytes().decode("utf-8", errors="replace")


def agreed(flag: bool) -> bool:
    """`flag` from every process, true when any has it: a decision each process would make on its
    own (a signal it received, a clock saying a checkpoint is due) that all must take together.
    A collective step in a distributed run; the flag itself otherwise."""
    if processes() == 1:
        return flag
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def least(value: float) -> float:
    """The smallest of every process's `value` (a memory budget: each host has its own free
    memory, and all must choose the same way of placing the data)."""
    if processes() == 1:
        return value
    import numpy as np
    from jax.experimental import multihost_utils

    return float(np.min(multihost_utils.process_allgather(np.asarray(value, np.float64))))
