"""The compile-time groups of a sweep (what the summary counts as programs) are those training
makes where the spec alone decides it: members that train one after another (`schedule plateau`,
which lowers each member's rate from its own monitor between epochs; `init` from a run) are a
program each, as `runtime/sweep.py` trains them; a seed sweep with `val=` is one program, its
members each on their own split."""

from __future__ import annotations

from test_sweeps import checked

from dlc.compiler.summary import summary

SEEDS = """data iris val=0.2 test=0.2
dense 16 relu
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=[1e-3, 1e-2]
seed [0, 1]
"""


def test_a_seed_sweep_with_held_out_splits_is_one_program() -> None:
    program = checked(SEEDS)
    assert program.sweep.groups == ((0, 1, 2, 3),)
    assert "4 members in 1 program " in summary(program)


def test_members_that_train_one_after_another_are_a_program_each() -> None:
    program = checked(SEEDS + "schedule plateau factor=0.5 patience=2\n")
    assert program.sweep.groups == ((0,), (1,), (2,), (3,))
    assert "4 members in 4 programs " in summary(program)
