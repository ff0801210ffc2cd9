"""Devices: which ones JAX can start, a data-parallel mesh over several (a sweep's group: its
members over them), and the on-disk cache of compiled XLA programs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dlc.runtime.distributed import processes


def use_compilation_cache() -> str:
    """Keep compiled XLA programs on disk, so a second run of an unchanged spec skips compiling.
    The folder is `$DLC_CACHE_DIR`, else `$XDG_CACHE_HOME/dlc/xla` (`~/.cache/dlc/xla`)."""
    folder = os.environ.get("DLC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dlc", "xla")
    if jax.config.jax_compilation_cache_dir != folder:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def traced_programs_folder() -> str | None:
    """Where `tracecache` keeps exported programs: a `traced` folder inside the XLA cache's (whose
    eviction only ever touches its own `*-cache` files). None in a distributed run, which traces
    every time: its processes must lower the same program, and one reading an exported program
    while another traces Flax might not."""
    if processes() > 1:
        use_compilation_cache()
        return None
    return os.path.join(use_compilation_cache(), "traced")


class DeviceError(Exception):
    """A device request that cannot be met: one line saying what is there."""


def available_devices() -> list:
    """JAX's devices. A platform asked for that cannot start (`JAX_PLATFORMS=cuda` on a machine
    without a GPU, where JAX fails with an empty AssertionError) is one DeviceError line."""
    try:
        return jax.devices()
    except (RuntimeError, AssertionError) as e:
        asked = os.environ.get("JAX_PLATFORMS")
        reason = str(e).splitlines()[0] if str(e) else "no such platform is installed or present"
        if asked:
            raise DeviceError(f"JAX_PLATFORMS={asked} asks for a platform JAX cannot start here ({reason}); "
                              "unset JAX_PLATFORMS to use what this machine has") from None
        raise DeviceError(f"JAX cannot start a device: {reason}") from None


def _devices(devices: int | str | None) -> list:
    """The first N devices asked for (N, or "all"); one for None."""
    available = available_devices()
    if devices is None:
        return available[:1]
    count = len(available) if devices == "all" else int(devices)
    if count < 1 or count > len(available):
        raise DeviceError(f"asked for {devices} devices, but JAX sees {len(available)} "
                          f"({available[0].platform}); on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
                          f"makes N")
    return available[:count]


def device_mesh(devices: int | str | None, batch: int):
    """A one-axis ("data") mesh over the first N devices, or None for one device."""
    return _one_axis_mesh(devices, "data", batch, lambda n: f"`batch {batch}` does not split evenly over {n} devices; "
                          f"use a multiple of {n}")


def member_mesh(devices: int | str | None, members: int):
    """A one-axis ("members") mesh over the first N devices for a sweep's group of `members`
    trained as one program: each device trains members/N of them, their parameters and optimizer
    state its own, the data on every device (no communication but the host's per-epoch fetch).
    None for one device."""
    return _one_axis_mesh(devices, "members", members, lambda n: f"a group of {members} sweep members does not "
                          f"split evenly over {n} devices; use a number of devices that divides {members}, or "
                          f"members in multiples of {n}")


def _one_axis_mesh(devices: int | str | None, axis: str, size: int, uneven: Callable[[int], str]):
    """A mesh of one named axis over the chosen devices, which must divide `size` (else `uneven(n)`
    is the error); None for one device."""
    if devices is None or devices == 1:
        return None
    chosen = _devices(devices)
    if len(chosen) == 1:
        return None
    if size % len(chosen):
        raise DeviceError(uneven(len(chosen)))
    from jax.sharding import Mesh

    return Mesh(np.array(chosen), (axis,))


def place(tree: Any, sharding: Any) -> Any:
    """`jax.device_put` onto a sharding, also one over several processes' devices (a distributed
    run), where a host array cannot be sent to another process's device: every process holds the
    same arrays, so each makes its own devices' pieces of them."""
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def global_array(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            return leaf
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(global_array(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(global_array, tree)


def fetch(tree: Any) -> Any:
    """`jax.device_get`, also of arrays split over several processes' devices (a sweep's members
    in a distributed run): those are first gathered onto every device, a collective step that
    every process takes at the same point of the same program."""
    return jax.device_get(_gathered(tree))


def on_this_device(tree: Any) -> Any:
    """`tree` on this process's first device, wherever it is (a slice of a sweep's member mesh,
    replicated over a data-parallel one, split over processes: then gathered first, as `fetch`)."""
    def local(leaf: Any) -> Any:
        return leaf.addressable_data(0) if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable else leaf

    return jax.device_put(jax.tree.map(local, _gathered(tree)), jax.local_devices()[0])


def _gathered(tree: Any) -> Any:
    def gathered(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not (leaf.is_fully_addressable or leaf.is_fully_replicated):
            from jax.sharding import NamedSharding, PartitionSpec

            return jax.jit(_same, out_shardings=NamedSharding(leaf.sharding.mesh, PartitionSpec()))(leaf)
        return leaf

    return jax.tree.map(gathered, tree)


def _same(x: Any) -> Any:
    return x


def _cache_entries() -> int:
    """Compiled programs in the XLA cache (a hit adds none)."""
    folder = jax.config.jax_compilation_cache_dir
    try:
        return sum(name.endswith("-cache") for name in os.listdir(folder)) if folder else 0
    except OSError:
        return 0
