"""The memory guard: before anything is allocated, estimate what training needs (parameters,
gradients, optimizer state, best-weights copy, activations of a batch, the data on the device)
and refuse a model that cannot fit, with the estimate in the message."""

from __future__ import annotations

import math
import os

from dlc.compiler import ir
from dlc.compiler import registry as reg

BYTES = 4  # float32
HEADROOM = 0.9  # leave some memory to XLA's own buffers and the rest of the process


class MemoryGuardError(Exception):
    """Training would not fit in memory: one line with the estimate and what is available."""


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def _activations(layers: tuple[ir.Layer, ...]) -> int:
    """Values per example that a forward pass keeps for the backward pass."""
    total = 0
    for layer in layers:
        total += math.prod(layer.output_shape or ()) if layer.output_shape else 0
        total += _activations(layer.body)
    return total


def estimate(program: ir.Program, n_train: int, n_val: int) -> dict[str, int]:
    """Bytes training needs, by part."""
    params = program.params or 0
    slots = reg.lookup("optimizer", program.optimizer.name).slots(program.optimizer.args) if program.optimizer else 0
    copies = 2 + slots + (1 if program.early_stop and program.early_stop.restore_best else 0)  # + grads
    per_example = math.prod(program.input_shape or (1,))
    return {
        "parameters and optimizer state": params * BYTES * copies,
        "activations of a batch": 2 * _activations(program.layers) * min(program.batch, max(n_train, 1)) * BYTES,
        "data on the device": (n_train + n_val) * (per_example + 1) * BYTES,
    }


def available() -> tuple[int | None, str]:
    """Bytes the default device can still allocate, and what that device is."""
    from dlc.runtime.train import available_devices

    device = available_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), f"{device.platform.upper()} memory"
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"
    except (ValueError, OSError, AttributeError):
        return None, "memory"


def device_data_budget() -> int | None:
    """Bytes of training data kept on the device; more is streamed in chunks. `$DLC_DATA_BUDGET`
    (bytes) sets it; by default half of what the device has free."""
    if os.environ.get("DLC_DATA_BUDGET"):
        try:
            return max(1, int(float(os.environ["DLC_DATA_BUDGET"])))
        except ValueError:
            raise MemoryGuardError(f"DLC_DATA_BUDGET must be a number of bytes, got {os.environ['DLC_DATA_BUDGET']!r}") \
                from None
    have, _ = available()
    return have // 2 if have else None


def guard_memory(program: ir.Program, prepared, data_budget: int | None = None) -> None:
    n_val = len(prepared.val.x) if prepared.val is not None else 0
    parts = estimate(program, len(prepared.train.x), n_val)
    if data_budget is not None:
        parts["data on the device"] = min(parts["data on the device"], data_budget)
    need = sum(parts.values())
    have, what = available()
    if have is None or need <= HEADROOM * have:
        return
    largest = max(parts, key=parts.get)
    raise MemoryGuardError(
        f"training `{program.name}` needs about {_human(need)} but the {what} is {_human(have)} "
        f"({largest}: {_human(parts[largest])}, for {program.params or 0:,} parameters); "
        f"use fewer units or filters, a smaller batch, or less data")
