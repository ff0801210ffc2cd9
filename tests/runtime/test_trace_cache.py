"""The trace cache (`dlc/runtime/tracecache.py`) changes how fast training starts, never what it
computes: the same history, to the bit, with an empty cache, a filled one and a damaged one; a
damaged, foreign or unexportable entry is traced again, silently and correctly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlc
from dlc.runtime import train
from dlc.runtime.tracecache import MAGIC, ProgramCache

MLP = """\
input 5
dense 8 relu
dropout 0.2
batchnorm
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=1e-2
batch 8
metrics accuracy
"""

CONV = """\
input 4x4x1
conv2d 2 3x3 relu padding=same
flatten
dense 3 softmax
loss categorical_crossentropy
optimizer sgd lr=1e-2
batch 8
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trace cache of this test's own (the XLA cache stays the session's)."""
    traced = tmp_path / "traced"
    monkeypatch.setattr(train, "traced_programs_folder", lambda: str(traced))
    return traced


def _data(spec: str):
    rng = np.random.default_rng(0)
    shape = (5,) if spec is MLP else (4, 4, 1)
    return rng.normal(size=(30, *shape)).astype(np.float32), rng.integers(0, 3, 30).astype(np.int32)


def _fit(spec: str) -> tuple[list[dict], dict]:
    program = dlc.compile(spec)
    x, y = _data(spec)
    history = program.fit(x, y, epochs=2, validation_data=(x[:7], y[:7]), seed=3)
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in history], program.trained.result.timings


def _damage(entries: list[Path]) -> None:
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))


@pytest.mark.parametrize("spec", [MLP, CONV], ids=["scan", "per_step"])
def test_the_history_is_the_same_with_an_empty_a_filled_and_a_damaged_cache(folder: Path, spec: str):
    empty, timings = _fit(spec)
    entries = sorted(folder.glob("*.jaxexport"))
    assert entries and not list(folder.glob(".writing-*"))
    filled, warm = _fit(spec)
    assert filled == empty
    if spec is MLP:  # the epoch program was read from disk, not traced
        assert timings["trace_cached"] == 0.0 and warm["trace_cached"] == 1.0
    _damage(entries)
    damaged, again = _fit(spec)
    assert damaged == empty
    if spec is MLP:
        assert again["trace_cached"] == 0.0
    assert _fit(spec)[0] == empty  # the damaged entries were written again, whole


def test_without_a_cache_folder_the_history_is_the_same(folder: Path, monkeypatch: pytest.MonkeyPatch):
    cached, _ = _fit(MLP)
    monkeypatch.setattr(train, "traced_programs_folder", lambda: None)
    assert _fit(MLP)[0] == cached


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "another program's", "bad header"])
def test_a_damaged_entry_is_traced_again(tmp_path: Path, damage: str):
    cache = ProgramCache(tmp_path, "identity")
    double = cache.program("double", lambda x: x * 2)
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(double(x), x * 2)
    (entry,) = tmp_path.glob("*.jaxexport")
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(MAGIC + b"0" * 64 + b"\n" + b"{}\n" + b"\x00" * 100)
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "another program's":
        cache.program("triple", lambda x: x * 3)(x)
        other = next(p for p in tmp_path.glob("*.jaxexport") if p != entry)
        entry.write_bytes(other.read_bytes())
    else:
        body = b'{"key": "' + entry.stem.encode() + b'", "node_types": [["os", "system"]], "key_outputs": []}\n'
        entry.write_bytes(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    again = ProgramCache(tmp_path, "identity").program("double", lambda x: x * 2)
    np.testing.assert_array_equal(again(x), x * 2)
    assert again.timings["trace_cached"] == 0.0
    read = ProgramCache(tmp_path, "identity").program("double", lambda x: x * 2)
    read(x)
    assert read.timings["trace_cached"] == 1.0  # rewritten whole


def test_keys_in_and_out_and_donation_survive_the_cache(tmp_path: Path):
    def step(state, key):
        key, sub = jax.random.split(key)
        return {"w": state["w"] + jax.random.normal(sub, state["w"].shape)}, key

    key = jax.random.key(1)
    expected = jax.jit(step)({"w": jnp.zeros(3)}, key)
    for _ in range(2):  # traced and written, then read
        program = ProgramCache(tmp_path, "identity").program("step", step, donate_argnums=(0,))
        state, out_key = program({"w": jnp.zeros(3)}, key)
        np.testing.assert_array_equal(state["w"], expected[0]["w"])
        assert jnp.array_equal(jax.random.key_data(out_key), jax.random.key_data(expected[1]))
    assert program.timings["trace_cached"] == 1.0


class _Tagged:
    """A pytree node with auxiliary data, which the cache does not know how to write."""

    def __init__(self, value, tag):
        self.value, self.tag = value, tag


jax.tree_util.register_pytree_node(_Tagged, lambda t: ((t.value,), t.tag), lambda tag, kids: _Tagged(kids[0], tag))


def test_a_program_that_cannot_be_exported_is_jitted_as_before(tmp_path: Path):
    program = ProgramCache(tmp_path, "identity").program("tagged", lambda t: _Tagged(t.value + 1, t.tag))
    out = program(_Tagged(jnp.ones(2), "a"))
    np.testing.assert_array_equal(out.value, 2 * np.ones(2))
    assert out.tag == "a" and not list(tmp_path.glob("*.jaxexport"))
