"""The memory guard: once the data is loaded and before training allocates anything, estimate the
run's peak memory and refuse a model that cannot fit under the tightest limit that applies (the
cgroup's, an rlimit, the GPU's, the free RAM), with one line. A killed process (exit 137) leaves
no message and a half-written checkpoint; this line says what to change. The estimate is
calibrated against measured peaks, erring high: bench/memory.py, bench/README.md."""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from dlc.compiler import ir
from dlc.compiler import registry as reg

BYTES = 4  # float32
MiB = 2 ** 20
# Measured (bench/memory.py): what a run adds above the process at the guard whatever the model:
# XLA's compiler and thread pools, Orbax's checkpointer, matplotlib for the plots.
RUNTIME = 320 * MiB
# Measured likewise, in address space: XLA's threads reserve stacks and malloc arenas that are
# mostly never touched, so an address-space limit (RLIMIT_AS) needs this much more again.
RESERVED_ADDRESS_SPACE = 1024 * MiB
EVAL_CHUNK = 1024  # rows of an evaluation chunk, as dlc.runtime.train.EVAL_CHUNK (not imported: that imports JAX)
UNLIMITED = 2 ** 62  # cgroup v1 writes "no limit" as a number near 2**63
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF = Path("/proc/self")
DEVICE_PARTS = ("parameters, gradients and optimizer state", "activations kept for the backward pass",
                "XLA temporaries of evaluation", "data on the device")


class MemoryGuardError(Exception):
    """Training would not fit in memory: one line with the estimate, the limit and its largest part."""


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


# --- the estimate ------------------------------------------------------------------------


def _activations(layers: tuple[ir.Layer, ...]) -> int:
    """Values per example that a forward pass keeps for the backward pass."""
    total = 0
    for layer in layers:
        total += math.prod(layer.output_shape or ()) if layer.output_shape else 0
        total += _activations(layer.body)
    return total


@dataclass(frozen=True)
class Estimate:
    parts: dict[str, int]  # bytes training will still allocate, by part
    in_use: int  # bytes the process holds now: interpreter, JAX, the loaded and normalized data
    high_water: int  # the most it has held so far: loading the data may have peaked above `in_use`

    @property
    def more(self) -> int:
        return sum(self.parts.values())

    @property
    def peak(self) -> int:
        return max(self.high_water, self.in_use + self.more)


def _rows(split) -> tuple[int, int]:
    """(rows, bytes per row of x and y) of a split, 0 rows for a missing one."""
    if split is None or not len(split.x):
        return 0, 0
    return len(split.x), (split.x.nbytes + split.y.nbytes) // len(split.x)


def _padded(rows: int) -> int:
    return math.ceil(rows / EVAL_CHUNK) * EVAL_CHUNK if rows else 0


def member_parts(program: ir.Program, n_train: int) -> dict[str, int]:
    """The bytes of the parts each member of a sweep's vmapped group holds for itself (its state,
    activations and evaluation temporaries, its checkpoint's copies): a group of K members holds
    K of each, and the data once (K times where each trains on its own split: `parts`' `data_copies`)."""
    # Frozen parameters are held, and get gradients, as trainable ones do: counting them with the
    # optimizer's slots too overestimates a little, which a guard may.
    params = (program.params or 0) + (program.frozen_params or 0)
    slots = reg.lookup("optimizer", program.optimizer.name).slots(program.optimizer.args) if program.optimizer else 0
    best = 1 if program.early_stop and program.early_stop.restore_best else 0
    per_example = _activations(program.layers) + math.prod(program.input_shape or (1,))
    batch = min(program.batch, max(n_train, 1))
    return {
        # the state and the state a step writes (gradients, updates), and the best weights so far
        "parameters, gradients and optimizer state": params * BYTES * (2 * (1 + slots) + 2 + best),
        # what the backward pass keeps (values and their gradients), for the batch and the next
        "activations kept for the backward pass": 4 * per_example * batch * BYTES,
        "XLA temporaries of evaluation": 2 * per_example * EVAL_CHUNK * BYTES,
        # Orbax copies what it saves to the host, then into its write buffers (measured: the wide case)
        "checkpoint copies on the host": 2 * params * BYTES * (1 + slots + best),
    }


def group_data_budget(program: ir.Program, n_train: int, data_budget: int | None, members: int) -> int | None:
    """Bytes of training data a vmapped group of `members` keeps on the device: `data_budget`
    (what one run may keep) less what the members past the first hold on the device, so that a
    group streams (one member at a time) where its members would crowd the data out."""
    if data_budget is None:
        return None
    device = sum(v for k, v in member_parts(program, n_train).items() if k in DEVICE_PARTS)
    return max(0, data_budget - (members - 1) * device)


def parts(program: ir.Program, prepared, data_budget: int | None = None, members: int = 1,
          data_copies: int = 1) -> dict[str, int]:
    """Bytes training will allocate beyond what the process holds at the guard, by part, for one
    run or a vmapped group of `members` sweep members (`data_copies`: how many training and
    validation splits the group holds, `members` where each trains on its own, stacked on the
    host, then put on the device). Copies count once each: on the CPU backend the device is the
    same RAM, and `device_put` copies. Training data over `data_budget` is streamed, but the final
    metrics put each split on the device whole, so streaming lowers the peak only while that split
    is smaller."""
    n_train, train_row = _rows(prepared.train)
    n_val, val_row = _rows(prepared.val)
    n_test, test_row = _rows(prepared.test)
    on_device = n_train * train_row if data_budget is None else min(n_train * train_row, data_budget)
    final_metrics = max(_padded(n_train) * train_row, _padded(n_val) * val_row, _padded(n_test) * test_row)
    each = member_parts(program, n_train)
    return {
        **{k: members * v for k, v in each.items() if k != "checkpoint copies on the host"},
        # while training: the training split (or its streamed chunks), the validation split in
        # padded chunks, the first chunk's loss; then the final metrics, one whole split at a time
        "data on the device": max(data_copies * (on_device + _padded(n_val) * val_row), final_metrics)
                              + 2 * EVAL_CHUNK * max(train_row, val_row),
        "checkpoint copies on the host": members * each["checkpoint copies on the host"],
        **({"the members' own splits, stacked on the host": data_copies * (n_train * train_row + n_val * val_row)}
           if data_copies > 1 else {}),
        "runtime (XLA compiler, threads, checkpointer, plots)": RUNTIME,
    }


def _status_kib(field: str) -> int | None:
    """A `VmRSS:`-style field of /proc/self/status, in bytes."""
    try:
        for line in (PROC_SELF / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def estimate(program: ir.Program, prepared, data_budget: int | None = None, members: int = 1,
             data_copies: int = 1) -> Estimate:
    """The run's peak (or a vmapped group's of `members`): what the process holds now (measured,
    so the interpreter, JAX and the loaded data count as they really are) plus what training
    will allocate."""
    in_use = _status_kib("VmRSS") or 0
    return Estimate(parts(program, prepared, data_budget, members, data_copies), in_use, max(in_use, _status_kib("VmHWM") or 0))


# --- the limits --------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    free: int  # bytes that can still be allocated under it
    total: int | None  # the limit itself; None for free RAM
    source: str  # where it comes from, for the message
    address_space: bool = False  # counts reserved address space, not only memory in use

    def describe(self) -> str:
        return f"{self.source} of {_human(self.total)}" if self.total is not None else self.source


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2's "no limit") is None


def _ancestors(base: Path, relative: str) -> list[Path]:
    """`base/relative` and each folder above it up to `base`: a parent's limit binds its children."""
    folder = base / relative.strip("/")
    out = [folder]
    while folder != base and base in folder.parents:
        folder = folder.parent
        out.append(folder)
    return out


def cgroup_limits() -> list[Limit]:
    """The memory limits of this process's cgroups, v2 (`memory.max` less `memory.current`) and
    v1 (`memory.limit_in_bytes` less `memory.usage_in_bytes`), at every level up to the root."""
    try:
        lines = (PROC_SELF / "cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if controllers == "":
            bases, files = [CGROUP_ROOT, CGROUP_ROOT / "unified"], ("memory.max", "memory.current", "memory.max")
        elif "memory" in controllers.split(","):
            bases, files = [CGROUP_ROOT / "memory"], ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                                      "memory.limit_in_bytes")
        else:
            continue
        for base in bases:
            for folder in _ancestors(base, relative):
                limit = _read_int(folder / files[0])
                if limit is None or limit >= UNLIMITED:
                    continue
                used = _read_int(folder / files[1]) or 0
                found.append(Limit(max(0, limit - used), limit, f"the cgroup's {files[2]}"))
    return found


def rlimits() -> list[Limit]:
    """RLIMIT_AS (`ulimit -v`, against the address space in use) and RLIMIT_DATA (against the data
    segment), where set."""
    found = []
    for kind, field, what in ((resource.RLIMIT_AS, "VmSize", "RLIMIT_AS (ulimit -v)"),
                              (resource.RLIMIT_DATA, "VmData", "RLIMIT_DATA (ulimit -d)")):
        soft, _ = resource.getrlimit(kind)
        if soft == resource.RLIM_INFINITY:
            continue
        used = _status_kib(field) or 0
        found.append(Limit(max(0, soft - used), soft, what, address_space=True))
    return found


def free_ram() -> Limit | None:
    """The RAM the kernel says can be had without swapping (MemAvailable)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return Limit(int(line.split()[1]) * 1024, None, "the available RAM")
    except (OSError, ValueError, IndexError):
        pass
    try:
        return Limit(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), None, "the available RAM")
    except (ValueError, OSError, AttributeError):
        return None


def host_limits() -> list[Limit]:
    ram = free_ram()
    return cgroup_limits() + rlimits() + ([ram] if ram else [])


def device_limit() -> Limit | None:
    """An accelerator's own memory (`bytes_limit` less `bytes_in_use`); None on the CPU backend,
    where the device is the host's RAM."""
    from dlc.runtime.devices import available_devices

    device = available_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" and hasattr(device, "memory_stats") else None
    if not stats or "bytes_limit" not in stats:
        return None
    limit = int(stats["bytes_limit"])
    return Limit(max(0, limit - int(stats.get("bytes_in_use", 0))), limit, f"the {device.platform.upper()}'s bytes_limit")


def available() -> tuple[int | None, str]:
    """Bytes the default device can still allocate, and what limits it: the tightest limit."""
    device = device_limit()
    limits = [device] if device else host_limits()
    if not limits:
        return None, "memory"
    tightest = min(limits, key=lambda limit: limit.free)
    return tightest.free, tightest.describe()


def device_data_budget() -> int | None:
    """Bytes of training data kept on the device; more is streamed in chunks. `$DLC_DATA_BUDGET`
    (bytes) sets it; by default half of what the device has free. (A distributed run takes the
    least of every process's: `distributed.least`.)"""
    if os.environ.get("DLC_DATA_BUDGET"):
        try:
            return max(1, int(float(os.environ["DLC_DATA_BUDGET"])))
        except ValueError:
            raise MemoryGuardError(f"DLC_DATA_BUDGET must be a number of bytes, got {os.environ['DLC_DATA_BUDGET']!r}") \
                from None
    have, _ = available()
    return have // 2 if have else None


# --- the guard ---------------------------------------------------------------------------


def _checks(need: Estimate) -> list[tuple[int, Limit, dict[str, int]]]:
    """(bytes still to allocate, limit, the parts counted) for every limit that applies: on an
    accelerator its memory holds the device parts and the host the rest; on a CPU, the host all."""
    device = device_limit()
    host_parts = {k: v for k, v in need.parts.items() if device is None or k not in DEVICE_PARTS}
    checks = [(sum(host_parts.values()) + (RESERVED_ADDRESS_SPACE if limit.address_space else 0), limit, host_parts)
              for limit in host_limits()]
    if device is not None:
        device_parts = {k: v for k, v in need.parts.items() if k in DEVICE_PARTS}
        checks.append((sum(device_parts.values()), device, device_parts))
    return checks


def guard_memory(program: ir.Program, prepared, data_budget: int | None = None, members: int = 1,
                 data_copies: int = 1) -> None:
    """Refuse a run, or a sweep's vmapped group of `members` (holding `data_copies` copies of the
    data, see `parts`), that would not fit (MemoryGuardError)."""
    need = estimate(program, prepared, data_budget, members, data_copies)
    for more, limit, counted in _checks(need):
        if more <= limit.free:
            continue
        largest = max(counted, key=counted.get)
        what = " of address space" if limit.address_space else ""
        who, params = (f"`{program.name}`", f"{program.params or 0:,} parameters") if members == 1 else \
            (f"`{program.name}`'s {members} sweep members together", f"{members} x {program.params or 0:,} parameters")
        fewer = "" if members == 1 else "fewer values in the sweep's lists (members), "
        raise MemoryGuardError(
            f"training {who} needs about {_human(need.peak)} at its peak: {_human(more)} more{what} "
            f"than it holds now, but {limit.describe()} leaves {_human(limit.free)} (largest part: {largest}, "
            f"{_human(counted[largest])}, for {params}); "
            f"use {fewer}fewer units or filters, a smaller batch, or less data")
