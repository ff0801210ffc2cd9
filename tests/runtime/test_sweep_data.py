"""Sweep members each on their own split (`sweep._train_all` with a `Prepared` per member, as
`fit_members` gives a seed sweep with `val=`): one vmapped program over data stacked on a member
axis, each member's history that of its lone run on its own split (1e-4), resumed bit for bit; the
memory guard counts the data once per member, and a group whose K copies would crowd the device
trains one member after another. Members that share a split keep one copy."""

from __future__ import annotations

import numpy as np
import pytest
from test_sweep import TRAIN, VAL, _numbers, _program, _vary

from dlc.runtime import memory, sweep
from dlc.runtime.data import Prepared, Split
from dlc.runtime.loop import fit
from dlc.runtime.options import FitOptions
from dlc.runtime.train import init_state, make_trainer


def _own(seed: int) -> Prepared:
    """A split of the examples drawn from `seed`: the same sizes for every seed."""
    x, y = np.concatenate([TRAIN[0], VAL[0]]), np.concatenate([TRAIN[1], VAL[1]])
    order = np.random.default_rng(seed).permutation(len(x))
    train, val = order[:64], order[64:]
    return Prepared(Split(x[train], y[train]), Split(x[val], y[val]), None, {}, None)


def _alone(program, data: Prepared):
    trainer = make_trainer(program, len(data.train.x), program.epochs)
    state = init_state(trainer, program.input_shape, program.seed)
    return fit(trainer, state, (data.train.x, data.train.y), (data.val.x, data.val.y), FitOptions())


def _ways(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record how each group trains (and what data it is given), then train it so."""
    ways, vmapped, one_by_one = [], sweep._vmapped, sweep._one_by_one
    monkeypatch.setattr(sweep, "_vmapped", lambda members, train, *args: ways.append(
        ("vmapped", len(members), train[0].shape)) or vmapped(members, train, *args))
    monkeypatch.setattr(sweep, "_one_by_one", lambda members, *args: ways.append(
        ("one by one", len(members))) or one_by_one(members, *args))
    return ways


def test_members_on_their_own_splits_train_as_one_program_each_as_alone(monkeypatch: pytest.MonkeyPatch):
    base = _program(epochs=3)
    members, data = [_vary(base, seed=s) for s in range(3)], [_own(s) for s in range(3)]
    ways = _ways(monkeypatch)
    together = sweep._train_all(members, data, FitOptions())
    assert ways == [("vmapped", 3, (3, 64, 4))]  # one program, the data on a member axis
    for member, own, outcome in zip(members, data, together, strict=True):
        lone = _alone(member, own)
        assert len(outcome.history) == len(lone.history) == 3
        np.testing.assert_allclose(_numbers(outcome.history), _numbers(lone.history), rtol=1e-4, atol=1e-6)
    # trained on its own split: another split gives another history
    assert not np.allclose(_numbers(together[0].history), _numbers(together[1].history))


def test_members_sharing_a_split_keep_one_copy_of_it(monkeypatch: pytest.MonkeyPatch):
    base, shared = _program(epochs=1), _own(0)
    ways = _ways(monkeypatch)
    sweep._train_all([_vary(base, seed=s) for s in range(3)], [shared] * 3, FitOptions())
    assert ways == [("vmapped", 3, (64, 4))]


def test_a_resumed_group_on_its_members_splits_is_bit_equal(tmp_path):
    base = _program(epochs=4)
    members, data = [_vary(base, seed=s) for s in range(2)], [_own(s) for s in range(2)]
    whole = sweep._train_all(members, data, FitOptions())
    folder, asked = tmp_path / "training", iter([False, False, True])
    with pytest.raises(sweep.MembersInterrupted):
        sweep._train_all(members, data, FitOptions(checkpoint_dir=folder, should_stop=asked.__next__,
                                                   checkpoint_interval=0))
    resumed = sweep._train_all(members, data, FitOptions(checkpoint_dir=folder, resume=True))
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(_numbers(a.history), _numbers(b.history))


def test_the_memory_guard_counts_each_members_split():
    base, prepared = _program(epochs=1), _own(0)
    train = prepared.train.x.nbytes + prepared.train.y.nbytes
    one, three = (memory.parts(base, prepared, members=3, data_copies=k) for k in (1, 3))
    assert three["data on the device"] > one["data on the device"] + 2 * train
    assert "the members' own splits, stacked on the host" in three
    assert "the members' own splits, stacked on the host" not in one


def test_a_group_whose_splits_would_crowd_the_device_trains_one_member_after_another(monkeypatch):
    """A data budget that holds one split beside three members' states, but not three splits: a
    warning says why the members train one after another."""
    base = _program(epochs=1)
    prepared = _own(0)
    split = prepared.train.x.nbytes + prepared.train.y.nbytes
    member = sum(v for k, v in memory.member_parts(base, 64).items() if k in memory.DEVICE_PARTS)
    ways = _ways(monkeypatch)
    options = FitOptions(data_budget=2 * split + 2 * member)
    members = [_vary(base, seed=s) for s in range(3)]
    sweep._train_all(members, [prepared] * 3, options)
    with pytest.warns(sweep.SweepWarning, match=r"3 sweep members train one after another, not as one program: "
                                                r"their own splits \(.* = 3 x one split\) would not fit"):
        sweep._train_all(members, [_own(s) for s in range(3)], options)
    assert ways == [("vmapped", 3, (64, 4)), ("one by one", 3)]


TWO_DEVICES = """
import json, sys
import jax
sys.path.insert(0, {tests!r})
import test_sweep as t
import test_sweep_data as d
from dlc.runtime import sweep
from dlc.runtime.options import FitOptions

assert len(jax.devices()) == 2
base = t._program(epochs=2)
members, data = [t._vary(base, seed=s) for s in range(4)], [d._own(s) for s in range(4)]
print(json.dumps([[t._numbers(o.history).tolist() for o in sweep._train_all(members, data, FitOptions(devices=n))]
                  for n in (None, 2)]))
"""


def test_two_devices_split_members_on_their_own_splits_as_one_device_trains_them():
    """The members' splits sharded over the "members" axis with their states (CPU devices made by
    XLA_FLAGS, in a process of their own): the histories of one device, within 1e-5."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES.format(tests=str(Path(__file__).parent))],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (np.array(h) for h in json.loads(done.stdout.splitlines()[-1]))
    assert one.shape[:2] == (4, 2) and np.max(np.abs(one - two)) <= 1e-5
