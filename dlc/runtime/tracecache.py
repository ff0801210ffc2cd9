"""Traced programs kept on disk, so that a second run of an unchanged spec skips tracing as well as
compiling.

JAX's persistent cache (`devices.use_compilation_cache`) is keyed by the traced program, so a run
must trace every program again before it can find it there: a quarter of a second for a small
MLP's epoch, most of a warm start. Here each program is also kept as a `jax.export` artifact (a
flatbuffer of the StableHLO module and its calling convention; no pickle anywhere), keyed by
everything that changes what is traced: the IR and the trainer's settings, the program's name, its
arguments' tree, shapes and dtypes, the backend and devices, JAX's tracing flags, the versions of
jax, jaxlib, flax and optax, and dlc's own source. A warm run reads the artifact and lowers a call
of it (milliseconds); XLA's cache then has the compiled program.

Cold and warm runs execute the same program: a call of the exported module, compiled from the same
text, so a cache hit never changes a number. An entry that is missing, damaged (each carries a
SHA-256 of itself), unreadable or from another program is traced again and rewritten atomically;
a program that cannot be exported (a pytree node of a type with no serialization, a key of another
PRNG implementation) is jitted as it always was.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

MAGIC = b"dlc-traced-program-1\n"
_BUILTIN_NODES = (tuple, list, dict, type(None))
_registered: dict[type, str] = {}  # node types this process registered with jax.export


@functools.cache
def _source_digest() -> str:
    """A hash of dlc's source: a change to the code that builds programs is a different program,
    whatever the version number says."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        with open(path, "rb") as source:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


def program_identity(settings: dict) -> str:
    """What every program of one trainer shares in its key: `settings` (the IR and the trainer's
    own choices) and what JAX traces differently on another machine or version."""
    import flax
    import jaxlib
    import optax

    devices = jax.devices()
    config = jax.config
    facts = {"settings": settings, "dlc_source": _source_digest(),
             "versions": [jax.__version__, jaxlib.__version__, flax.__version__, optax.__version__],
             "backend": jax.default_backend(), "devices": [len(devices), devices[0].device_kind],
             "flags": [config.jax_enable_x64, config.jax_default_prng_impl, config.jax_threefry_partitionable,
                       config.jax_default_matmul_precision, config.jax_numpy_rank_promotion]}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


class ProgramCache:
    """The folder of exported programs (None: trace every time, as plain `jax.jit`)."""

    def __init__(self, folder: str | os.PathLike | None, identity: str):
        self.folder = Path(folder) if folder else None
        self.identity = identity

    def program(self, name: str, fn: Callable, donate_argnums: tuple[int, ...] = (),
                compiler_options: dict | None = None) -> CachedProgram:
        return CachedProgram(self, name, fn, donate_argnums, compiler_options)

    def read(self, key: str) -> tuple[dict, bytes] | None:
        """The header and exported bytes of an entry, or None when it is missing or damaged."""
        try:
            with open(self.folder / f"{key}.jaxexport", "rb") as entry:
                data = entry.read()
        except OSError:
            return None
        if not data.startswith(MAGIC):
            return None
        body = data[len(MAGIC) + 65:]
        if data[len(MAGIC):len(MAGIC) + 64] != hashlib.sha256(body).hexdigest().encode():
            return None
        header, _, blob = body.partition(b"\n")
        try:
            meta = json.loads(header)
        except ValueError:
            return None
        return (meta, blob) if isinstance(meta, dict) and meta.get("key") == key else None

    def write(self, key: str, meta: dict, blob: bytes) -> None:
        """Write an entry atomically (a whole file or none); a cache that cannot be written is no
        error, the next run traces again."""
        body = json.dumps({**meta, "key": key}).encode() + b"\n" + bytes(blob)
        data = MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".writing-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(temporary, self.folder / f"{key}.jaxexport")
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass


class CachedProgram:
    """`fn` compiled once per signature of its arguments, as `jax.jit` does, but traced through the
    cache. `timings` holds the seconds of the latest compile: `trace` (tracing and exporting, or
    reading the entry), `compile`, and `trace_cached` (1.0 when the entry was read from disk)."""

    def __init__(self, cache: ProgramCache, name: str, fn: Callable, donate_argnums: tuple[int, ...],
                 compiler_options: dict | None):
        self.cache, self.name, self.fn = cache, name, fn
        self.donate_argnums, self.compiler_options = donate_argnums, compiler_options
        self.timings: dict[str, float] = {}
        self._compiled: dict[Any, Callable] = {}

    def __call__(self, *args):
        args = _strong_scalars(args)
        compiled = self._compiled.get(_signature(args))
        return (compiled or self._compile(args))(*args)

    def prepare(self, *args) -> dict[str, float]:
        """Compile for these arguments ahead of the call, and say what it cost (nothing, when
        they were compiled for already)."""
        args = _strong_scalars(args)
        if _signature(args) in self._compiled:
            return {"trace": 0.0, "compile": 0.0}
        self._compile(args)
        return self.timings

    def _compile(self, args: tuple) -> Callable:
        started = time.perf_counter()
        specs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), args)
        lowered, traced = self._lowered(specs, args)
        self.timings = {"trace": time.perf_counter() - started, "trace_cached": float(not traced)}
        started = time.perf_counter()
        compiled = lowered.compile(self.compiler_options)
        self.timings["compile"] = time.perf_counter() - started
        self._compiled[_signature(args)] = compiled
        return compiled

    def _lowered(self, specs, args) -> tuple[Any, bool]:
        """A call of the exported program (read from disk, else traced, exported and written),
        lowered for the arguments' own placement, and whether it was traced; plain `jax.jit(fn)`
        where exporting cannot serve."""
        if self.cache.folder is None or not all(_exportable(leaf) for leaf in jax.tree.leaves(args)):
            return jax.jit(self.fn, donate_argnums=self.donate_argnums).lower(*args), True
        key = self._key(specs)
        raw_specs = _raw(specs)
        entry = self.cache.read(key)
        exported = _deserialize(*entry, raw_specs) if entry is not None else None
        if exported is not None:
            try:
                return self._caller(exported, entry[0]["key_outputs"]).lower(*args), False
            except Exception:  # an entry that reads well but does not lower: trace again
                pass
        raw_fn, key_outputs = _without_keys(self.fn, [_is_key(leaf) for leaf in jax.tree.leaves(specs)])
        try:
            exported = jax.export.export(jax.jit(raw_fn))(*raw_specs)
            names = _register(exported.in_tree, exported.out_tree)
            blob = exported.serialize()
        except (TypeError, ValueError):  # a pytree node or dtype that jax.export cannot serialize
            return jax.jit(self.fn, donate_argnums=self.donate_argnums).lower(*args), True
        self.cache.write(key, {"program": self.name, "node_types": names, "key_outputs": key_outputs}, blob)
        return self._caller(exported, key_outputs).lower(*args), True

    def _key(self, specs) -> str:
        signature = [str(jax.tree.structure(specs)), [(s.shape, str(s.dtype)) for s in jax.tree.leaves(specs)]]
        text = json.dumps([self.cache.identity, self.name, signature, self.donate_argnums,
                           self.compiler_options], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _caller(self, exported, key_outputs: list[int]) -> Callable:
        """Typed keys in and out, as `fn` takes and returns them; raw key data across the call."""

        def call(*args):
            out = exported.call(*_raw(args))
            leaves, tree = jax.tree.flatten(out)
            for i in key_outputs:
                leaves[i] = jax.random.wrap_key_data(leaves[i])
            return jax.tree.unflatten(tree, leaves)

        return jax.jit(call, donate_argnums=self.donate_argnums)


def _strong_scalars(args: tuple) -> tuple:
    """Python ints as int32 arrays: one signature whatever the value, and a dtype export can keep."""
    return tuple(np.int32(a) if isinstance(a, int) and not isinstance(a, bool) else a for a in args)


def _signature(args: tuple) -> tuple:
    leaves, tree = jax.tree.flatten(args)
    return tree, tuple((leaf.shape, leaf.dtype, _sharding(leaf)) for leaf in leaves)


def _sharding(leaf):
    return getattr(leaf, "sharding", None) if isinstance(leaf, jax.Array) else None


def _is_key(leaf) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _exportable(leaf) -> bool:
    """Arrays on one device, keys of the default PRNG implementation."""
    sharding = _sharding(leaf)
    if sharding is not None and len(sharding.device_set) > 1:
        return False
    return not _is_key(leaf) or str(jax.random.key_impl(leaf)) == jax.config.jax_default_prng_impl


def _raw(tree):
    """Typed keys as their raw uint32 data (jax.export serializes no key dtype)."""
    def raw(leaf):
        if not _is_key(leaf):
            return leaf
        if isinstance(leaf, jax.ShapeDtypeStruct):
            return jax.eval_shape(jax.random.key_data, leaf)
        return jax.random.key_data(leaf)

    return jax.tree.map(raw, tree)


def _without_keys(fn: Callable, key_inputs: list[bool]) -> tuple[Callable, list[int]]:
    """`fn` over raw key data in and out (`key_inputs` marks the argument leaves that are keys); the
    list returned is filled, once it is traced, with the indices of the output leaves that are."""
    key_outputs: list[int] = []

    def raw_fn(*args):
        leaves, tree = jax.tree.flatten(args)
        leaves = [jax.random.wrap_key_data(leaf) if is_key else leaf for leaf, is_key in zip(leaves, key_inputs)]
        out_leaves, out_tree = jax.tree.flatten(fn(*jax.tree.unflatten(tree, leaves)))
        key_outputs[:] = [i for i, leaf in enumerate(out_leaves) if _is_key(leaf)]
        return jax.tree.unflatten(out_tree, [jax.random.key_data(leaf) if _is_key(leaf) else leaf
                                             for leaf in out_leaves])

    return raw_fn, key_outputs


def _node_types(*trees) -> set[type]:
    found: set[type] = set()

    def walk(tree) -> None:
        node = tree.node_data()
        if node is not None and node[0] not in _BUILTIN_NODES:
            found.add(node[0])
        for child in tree.children():
            walk(child)

    for tree in trees:
        walk(tree)
    return found


def _is_namedtuple(node_type: type) -> bool:
    return isinstance(node_type, type) and issubclass(node_type, tuple) and hasattr(node_type, "_fields")


def _register_type(node_type: type) -> None:
    """Tell jax.export how to write a pytree node type: a namedtuple (optax's states) by its
    fields, any other registered node (`TrainState`) only when it keeps no auxiliary data."""
    if node_type in _registered:
        return
    name = f"{node_type.__module__}:{node_type.__qualname__}"
    if _is_namedtuple(node_type):
        jax.export.register_namedtuple_serialization(node_type, serialized_name=name)
    else:
        def no_auxdata(aux) -> bytes:
            if aux not in ((), None):
                raise ValueError(f"cannot serialize the auxiliary data of {name}")
            return b"" if aux is None else b"()"

        jax.export.register_pytree_node_serialization(
            node_type, serialized_name=name, serialize_auxdata=no_auxdata,
            deserialize_auxdata=lambda data: () if data == b"()" else None)
    _registered[node_type] = name


def _register(*trees) -> list[list[str]]:
    """Register every node type of the trees; their (module, qualified name) for the header."""
    types = sorted(_node_types(*trees), key=lambda t: (t.__module__, t.__qualname__))
    for node_type in types:
        _register_type(node_type)
    return [[t.__module__, t.__qualname__] for t in types]


# The packages whose pytree node types a program's state holds (TrainState, optax's states).
_STATE_PACKAGES = ("dlc", "optax", "flax", "jax")


def _resolve(module: str, qualname: str) -> type | None:
    """A node type named by an entry: a class of a module of the packages above that is already
    imported, found through the module's namespace only (an entry is untrusted input: it never
    makes anything import or run, not even a property)."""
    if module.split(".")[0] not in _STATE_PACKAGES:
        return None
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        namespace = vars(found) if isinstance(found, (type, types.ModuleType)) else {}
        found = namespace.get(part)
    return found if isinstance(found, type) else None


def _deserialize(meta: dict, blob: bytes, raw_specs):
    """The exported program of an entry when it is the program asked for (its arguments' tree,
    shapes and dtypes), else None."""
    try:
        for module, qualname in meta["node_types"]:
            node_type = _resolve(module, qualname)
            if node_type is None:
                return None
            _register_type(node_type)
        exported = jax.export.deserialize(bytearray(blob))
        keys = [exported.out_avals[i] for i in meta["key_outputs"] if isinstance(i, int) and i >= 0]
    except Exception:  # a damaged or foreign entry, in whatever way: trace again
        return None
    leaves = jax.tree.leaves(raw_specs)
    same = exported.in_tree == jax.tree.structure((tuple(raw_specs), {})) and [
        (a.shape, a.dtype) for a in exported.in_avals] == [(s.shape, s.dtype) for s in leaves]
    keys_are_key_data = len(keys) == len(meta["key_outputs"]) and all(a.dtype == np.uint32 and a.ndim for a in keys)
    return exported if same and keys_are_key_data else None
