"""Sweeps (`dlc/runtime/sweep.py`, `sweepgroup.py`, `sweepsave.py`): the members of a group trained
as one vmapped program give what each gives alone through the ordinary path: the same history
(1e-4; today equal or within a few float32 ulps), the same early stop, the same divergence, the
same final weights. Interrupted and resumed from its checkpoints, a sweep gives what it gives
uninterrupted, bit for bit; the memory guard counts a group's members; two devices split them.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import dlc
from dlc.compiler import ir
from dlc.runtime import sweep
from dlc.runtime.loop import FitResult, fit
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Diverged
from dlc.runtime.train import init_state, make_trainer

# Dropout compiles slowly vmapped (seconds): only the tests that need it have it.
MLP = """\
input 4
dense 12 relu
{middle}
dense 3 softmax
loss categorical_crossentropy
optimizer {optimizer}
batch 16
epochs {epochs}
metrics accuracy
{extra}
"""


def _data():
    """64 examples whose class is the largest of the first three features: learnable in a few epochs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(84, 4)).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1).astype(np.int32)
    return (x[:64], y[:64]), (x[64:], y[64:])


TRAIN, VAL = _data()


def _program(optimizer: str = "sgd lr=0.05", epochs: int = 3, extra: str = "", middle: str = "") -> ir.Program:
    return dlc.compile(MLP.format(optimizer=optimizer, epochs=epochs, extra=extra, middle=middle)).ir


def _vary(program: ir.Program, seed: int | None = None, dropout: float | None = None, **numbers) -> ir.Program:
    """A member: the program with another seed, dropout rate or optimizer numbers."""
    layers = tuple(dataclasses.replace(layer, args={**layer.args, "rate": dropout})
                   if layer.kind == "dropout" and dropout is not None else layer for layer in program.layers)
    opt = dataclasses.replace(program.optimizer, args={**program.optimizer.args, **numbers})
    return dataclasses.replace(program, seed=program.seed if seed is None else seed, layers=layers, optimizer=opt)


def _alone(program: ir.Program):
    trainer = make_trainer(program, len(TRAIN[0]), program.epochs)
    try:
        return fit(trainer, init_state(trainer, program.input_shape, program.seed), TRAIN, VAL, FitOptions())
    except Diverged as diverged:
        return diverged


def _numbers(history: list[dict]) -> np.ndarray:
    return np.array([[v for k, v in sorted(row.items()) if k != "epoch_time"] for row in history])


def _furthest(members: list[ir.Program]) -> float:
    """Train the group, and each member alone; the largest difference of any loss or metric of any
    epoch (the histories must have the same epochs)."""
    together = sweep.train_members(members, TRAIN, VAL, FitOptions())
    furthest = 0.0
    for member, outcome in zip(members, together, strict=True):
        lone = _alone(member)
        assert type(outcome) is type(lone)
        assert len(outcome.history) == len(lone.history)
        furthest = max(furthest, float(np.max(np.abs(_numbers(outcome.history) - _numbers(lone.history)))))
    return furthest


def test_a_seed_sweep_is_each_seed_alone():
    """With dropout (each member's keys from its seed) and batchnorm (statistics per member)."""
    base = _program("adam lr=1e-2", middle="dropout 0.2\nbatchnorm")
    assert _furthest([_vary(base, seed=s) for s in (0, 1, 2)]) <= 1e-4


def test_an_lr_by_momentum_sweep_under_sgd():
    """Momentum 0 among others: the member keeps a trace that adds nothing, the lone run none."""
    base = _program("sgd lr=0.05")
    members = [_vary(base, seed=i, lr=lr, momentum=m) for i, (lr, m) in enumerate(
        [(0.05, 0.0), (0.05, 0.9), (0.2, 0.0), (0.2, 0.9)])]
    assert _furthest(members) <= 1e-4


def test_an_adam_lr_sweep_with_clip_on_some_members():
    base = _program("adamw lr=1e-3")
    members = [_vary(base, lr=1e-3), _vary(base, lr=1e-2, clip=0.5), _vary(base, lr=3e-2, b1=0.8, weight_decay=1e-2)]
    assert _furthest(members) <= 1e-4


def test_a_dropout_rate_sweep_including_no_dropout():
    base = _program("sgd lr=0.1 momentum=0.5", middle="dropout 0.2")
    assert _furthest([_vary(base, dropout=rate) for rate in (0.0, 0.2, 0.6)]) <= 1e-4


def test_members_stop_early_on_their_own_and_restore_their_best():
    """patience 1 on val_loss: a member with a rate this large stops while the slow one goes on."""
    base = _program("sgd lr=0.05", epochs=8, extra="early_stop 1 monitor=val_loss restore_best=true")
    members = [_vary(base, lr=lr) for lr in (2.0, 0.01)]
    together = sweep.train_members(members, TRAIN, VAL, FitOptions())
    lone = [_alone(m) for m in members]
    assert [len(o.history) for o in together] == [len(o.history) for o in lone]
    assert len(together[0].history) < len(together[1].history)
    for outcome, alone in zip(together, lone, strict=True):
        assert (outcome.stopped_early, outcome.best_epoch) == (alone.stopped_early, alone.best_epoch)
        assert np.max(np.abs(_numbers(outcome.history) - _numbers(alone.history))) <= 1e-4
        for ours, theirs in zip(jax.tree.leaves(outcome.state.params), jax.tree.leaves(alone.state.params), strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
        assert jax.tree.structure(outcome.state.batch_stats) == jax.tree.structure(alone.state.batch_stats)


def test_a_diverged_member_stops_with_its_history_and_the_others_go_on():
    base = _program("sgd lr=0.05", epochs=3)
    members = [_vary(base, lr=0.05), _vary(base, lr=1e4)]
    together = sweep.train_members(members, TRAIN, VAL, FitOptions())
    diverged = _alone(members[1])
    assert isinstance(diverged, Diverged) and isinstance(together[1], Diverged)
    assert (together[1].epoch, together[1].quantity) == (diverged.epoch, diverged.quantity)
    assert len(together[0].history) == 3
    assert _furthest(members) <= 1e-4


def test_every_epoch_is_reported_with_its_member():
    base = _program(epochs=2)
    seen = []
    sweep.train_members([_vary(base, seed=0), _vary(base, seed=1)], TRAIN, VAL,
                        FitOptions(on_epoch=lambda epoch, logs: seen.append((epoch, logs["member"]))))
    assert seen == [(1, 0), (1, 1), (2, 0), (2, 1)]


def test_a_sweep_of_the_api_equals_program_fit():
    """Through `Program.fit` (Session.fit: data prepared, validation split) alone, against the
    members trained together on the data that fit prepared."""
    text = MLP.format(optimizer="adam lr=1e-2", epochs=2, extra="", middle="")
    alone = []
    for seed in (0, 1):
        program = dlc.compile(text)
        history = program.fit(TRAIN[0], TRAIN[1], validation_data=VAL, seed=seed)
        alone.append((program.trained, history))
    session = alone[0][0]
    prepared = session.prepared
    members = [dataclasses.replace(session.program, seed=seed) for seed in (0, 1)]
    together = sweep.train_members(members, (prepared.train.x, prepared.train.y),
                                   (prepared.val.x, prepared.val.y), FitOptions())
    for outcome, (_, history) in zip(together, alone, strict=True):
        assert np.max(np.abs(_numbers(outcome.history) - _numbers(history))) <= 1e-4


def test_a_convolution_group_on_a_cpu_trains_one_member_after_another(monkeypatch: pytest.MonkeyPatch):
    """On a CPU convolutions train one compiled step per batch, which the vmapped epoch does not do."""
    monkeypatch.setattr(sweep, "_vmapped", lambda *args: pytest.fail("a convolution group was vmapped"))
    program = dlc.compile("input 2x2x1\nconv2d 2 2x2 relu padding=same\nflatten\ndense 3 softmax\n"
                          "loss categorical_crossentropy\noptimizer sgd lr=0.1\nbatch 16\nepochs 1\n").ir
    x = TRAIN[0].reshape(64, 2, 2, 1)
    outcomes = sweep.train_members([program, dataclasses.replace(program, seed=1)], (x, TRAIN[1]), None, FitOptions())
    assert [len(o.history) for o in outcomes] == [1, 1]


def test_members_that_differ_in_a_shape_or_a_schedule_train_in_groups_of_their_own(monkeypatch: pytest.MonkeyPatch):
    base = _program()
    wider = dataclasses.replace(base, layers=(dataclasses.replace(base.layers[0], args={**base.layers[0].args,
                                                                                          "units": 13}),
                                              *base.layers[1:]))
    decaying = dataclasses.replace(base, schedule=ir.Named("exponential", {"decay_rate": 0.5, "decay_steps": None,
                                                                           "staircase": False}))
    members = [base, wider, _vary(base, seed=1), decaying, _vary(wider, seed=2)]
    groups = []
    vmapped = sweep._vmapped
    monkeypatch.setattr(sweep, "_vmapped", lambda group, *args: groups.append(group) or vmapped(group, *args))
    outcomes = sweep.train_members(members, TRAIN, VAL, FitOptions())
    assert groups == [[members[0], members[2]], [members[1], members[4]]]  # the decaying one alone
    for member, outcome in zip(members, outcomes, strict=True):
        assert np.max(np.abs(_numbers(outcome.history) - _numbers(_alone(member).history))) <= 1e-4


def test_a_stop_asked_for_ends_every_member_at_a_safe_point():
    base = _program(epochs=3)
    with pytest.raises(sweep.MembersInterrupted) as stop:
        sweep.train_members([_vary(base, seed=0), _vary(base, seed=1)], TRAIN, VAL,
                            FitOptions(should_stop=iter([False, True]).__next__))
    assert stop.value.epoch == 1 and [len(h) for h in stop.value.histories] == [1, 1]


def test_fit_of_a_sweep_trains_every_member_as_its_spec_alone():
    """`Program.fit` on a spec with lists: a history per member, each its written-out spec's own
    (1e-4), members whose seed changes their validation split included; the members are Programs."""
    text = ('data iris val=0.2 normalize=standard\ninput 4\ndense 8 relu\ndropout [0.0, 0.3]\ndense 3 softmax\n'
            "loss categorical_crossentropy\noptimizer adam lr=[1e-2, 3e-2]\nepochs 3\nseed [0, 1]\n")
    program = dlc.compile(text)
    histories = program.fit()
    assert len(histories) == len(program.members) == 8
    for member, history in zip(program.members, histories, strict=True):
        alone = dlc.compile(member.source).fit()
        assert np.max(np.abs(_numbers(history) - _numbers(alone))) <= 1e-4, member.source
        assert member.predict(np.zeros((2, 4))).shape == (2, 3)
    with pytest.raises(RuntimeError, match="is a sweep of 8 members"):
        program.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="fit its members .* one by one to go on"):
        program.fit()


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in history]


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[list[ir.Program], list]:
    """Five members (one stops early, one diverges) and their sweep trained without a break, which
    every `stop_after` compares with (trained once)."""
    base = _program("sgd lr=0.05", epochs=6, extra="early_stop 1 monitor=val_loss restore_best=true")
    members = [_vary(base, lr=5.0), _vary(base, lr=0.01), _vary(base, lr=1e4), _vary(base, lr=0.05, seed=3),
               _vary(base, lr=1.0, momentum=0.9)]
    return members, sweep.train_members(members, TRAIN, VAL, FitOptions())


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_an_interrupted_sweep_resumed_equals_one_never_interrupted(tmp_path, uninterrupted, stop_after: int):
    """Stopped after `stop_after` epochs (one member stopped early by then, one diverged), then
    resumed from its checkpoints: the same histories, early stops and best weights, bit for bit."""
    members, whole = uninterrupted
    assert [(type(o), len(o.history)) for o in whole] == [(FitResult, 2), (FitResult, 6), (Diverged, 1),
                                                           (FitResult, 6), (FitResult, 3)]
    folder = tmp_path / "training"
    asked = iter([False] * stop_after + [True])
    with pytest.raises(sweep.MembersInterrupted) as stop:
        sweep.train_members(members, TRAIN, VAL, FitOptions(checkpoint_dir=folder, should_stop=asked.__next__))
    assert stop.value.epoch == stop_after
    resumed = sweep.train_members(members, TRAIN, VAL, FitOptions(checkpoint_dir=folder, resume=True))
    for ours, theirs in zip(resumed, whole, strict=True):
        assert type(ours) is type(theirs)
        assert _without_times(ours.history) == _without_times(theirs.history)
        if isinstance(theirs, Diverged):
            assert (ours.epoch, ours.quantity, ours.value) == (theirs.epoch, theirs.quantity, theirs.value)
            continue
        assert (ours.stopped_early, ours.best_epoch) == (theirs.stopped_early, theirs.best_epoch)
        for a, b in zip(jax.tree.leaves(ours.state), jax.tree.leaves(theirs.state), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_finished_sweep_resumed_trains_nothing_again(tmp_path):
    base = _program(epochs=2)
    members = [_vary(base, seed=0), _vary(base, seed=1)]
    options = FitOptions(checkpoint_dir=tmp_path / "training")
    first = sweep.train_members(members, TRAIN, VAL, options)
    seen = []
    again = sweep.train_members(members, TRAIN, VAL, dataclasses.replace(
        options, resume=True, on_epoch=lambda epoch, logs: seen.append(epoch)))
    assert seen == []
    assert [_without_times(o.history) for o in again] == [_without_times(o.history) for o in first]


def test_a_sweep_resumed_with_other_epochs_is_refused(tmp_path):
    from dlc.runtime.session import ResumeError

    base = _program(epochs=2)
    members = [_vary(base, seed=0), _vary(base, seed=1)]
    sweep.train_members(members, TRAIN, VAL, FitOptions(checkpoint_dir=tmp_path / "training"))
    longer = [dataclasses.replace(m, epochs=3) for m in members]
    with pytest.raises(ResumeError, match=r"epochs \(2 -> 3\) changed since the sweep started"):
        sweep.train_members(longer, TRAIN, VAL, FitOptions(checkpoint_dir=tmp_path / "training", resume=True))


def test_a_convolution_group_resumes_member_by_member(tmp_path):
    """The members the vmapped epoch does not train are checkpointed as single runs are."""
    program = dlc.compile("input 2x2x1\nconv2d 2 2x2 relu padding=same\nflatten\ndense 3 softmax\n"
                          "loss categorical_crossentropy\noptimizer sgd lr=0.1\nbatch 16\nepochs 3\n").ir
    members = [program, dataclasses.replace(program, seed=1)]
    x = (TRAIN[0].reshape(64, 2, 2, 1), TRAIN[1])
    whole = sweep.train_members(members, x, None, FitOptions())
    asked = iter([False] * 4 + [True])  # member 0: before training and 3 epochs; member 1: before training
    folder = tmp_path / "training"
    with pytest.raises(sweep.MembersInterrupted) as stop:
        sweep.train_members(members, x, None, FitOptions(checkpoint_dir=folder, should_stop=asked.__next__))
    assert [len(h) for h in stop.value.histories] == [3, 0]
    resumed = sweep.train_members(members, x, None, FitOptions(checkpoint_dir=folder, resume=True))
    assert [_without_times(o.history) for o in resumed] == [_without_times(o.history) for o in whole]


def test_the_memory_guard_counts_the_members_of_a_group(monkeypatch: pytest.MonkeyPatch):
    """A limit that one member fits under and eight vmapped together do not."""
    from dlc.runtime import memory
    from dlc.runtime.data import Prepared, Split

    base = _program(epochs=1)
    prepared = Prepared(Split(*TRAIN), Split(*VAL), None, {}, None)
    one, eight = (sum(memory.parts(base, prepared, members=k).values()) for k in (1, 8))
    assert eight - one == 7 * sum(memory.member_parts(base, len(TRAIN[0])).values())
    monkeypatch.setattr(memory, "device_limit", lambda: None)
    monkeypatch.setattr(memory, "host_limits", lambda: [memory.Limit((one + eight) // 2, 4 << 30, "a fake limit")])
    members = [_vary(base, seed=s) for s in range(8)]
    with pytest.raises(memory.MemoryGuardError, match=r"training `.*`'s 8 sweep members together needs about .* "
                                                      r"for 8 x 99 parameters\); use fewer values in the sweep's"):
        sweep.train_members(members, TRAIN, VAL, FitOptions())
    assert len(sweep.train_members(members[:1], TRAIN, VAL, FitOptions())[0].history) == 1


def test_a_group_streams_where_its_members_would_crowd_the_data_out(monkeypatch: pytest.MonkeyPatch):
    """A data budget that holds the data beside two members' states but not beside eight: the
    two train vmapped, the eight one after another, streaming."""
    from dlc.runtime import memory

    base = _program(epochs=1)
    data = TRAIN[0].nbytes + TRAIN[1].nbytes
    member = sum(v for k, v in memory.member_parts(base, len(TRAIN[0])).items() if k in memory.DEVICE_PARTS)
    ways = []
    monkeypatch.setattr(sweep, "_one_by_one", lambda members, *args: ways.append(("one by one", len(members))) or members)
    monkeypatch.setattr(sweep, "_vmapped", lambda members, *args: ways.append(("vmapped", len(members))) or members)
    options = FitOptions(data_budget=data + 3 * member)
    for count in (2, 8):
        sweep.train_members([_vary(base, seed=s) for s in range(count)], TRAIN, VAL, options)
    assert ways == [("vmapped", 2), ("one by one", 8)]


TWO_DEVICES = """
import json, sys, tempfile
from pathlib import Path
import jax
import numpy as np
sys.path.insert(0, {tests!r})
import test_sweep as t
from dlc.runtime import sweep, sweepgroup
from dlc.runtime.options import FitOptions

assert len(jax.devices()) == 2
base = t._program("adam lr=1e-2", epochs=3, middle="dropout 0.2\\nbatchnorm")
members = [t._vary(base, seed=s, lr=lr) for s in (0, 1) for lr in (1e-2, 3e-2)]
placed = []
sharded = sweepgroup._sharded
sweepgroup._sharded = lambda mesh, tree: placed.append(mesh.shape) or sharded(mesh, tree)
out = []
for devices in (None, 2):
    outcomes = sweep.train_members(members, t.TRAIN, t.VAL, FitOptions(devices=devices))
    out.append([t._numbers(o.history).tolist() for o in outcomes])
try:
    sweep.train_members(members[:3], t.TRAIN, t.VAL, FitOptions(devices=2))
except Exception as e:
    out.append(str(e))
folder = Path(tempfile.mkdtemp()) / "training"
try:
    sweep.train_members(members, t.TRAIN, t.VAL, FitOptions(devices=2, checkpoint_dir=folder,
                                                            should_stop=iter([False, False, True]).__next__))
except sweep.MembersInterrupted:
    pass
resumed = sweep.train_members(members, t.TRAIN, t.VAL, FitOptions(devices=2, checkpoint_dir=folder, resume=True))
out.append([t._numbers(o.history).tolist() for o in resumed])
print(json.dumps({{"histories": out[:2], "placed": [dict(p) for p in placed], "odd": out[2], "resumed": out[3]}}))
"""


def test_two_devices_split_the_members_and_give_the_histories_of_one():
    """Members sharded over a "members" mesh axis (CPU devices made by XLA_FLAGS, in a process of
    their own): each member's history equals the one-device sweep's within 1e-5, and a sweep
    interrupted on two devices resumes there to the same numbers."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", TWO_DEVICES.format(tests=str(Path(__file__).parent))],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["placed"] == [{"members": 2}] * 3  # trained, interrupted, resumed
    one, two = (np.array(h) for h in found["histories"])
    assert np.max(np.abs(one - two)) <= 1e-5
    resumed = np.array(found["resumed"])
    assert np.array_equal(resumed, two)  # interrupted after epoch 2 and resumed: bit for bit
    assert "a group of 3 sweep members does not split evenly over 2 devices" in found["odd"]
