"""A run folder saved before layers had names keys its checkpoint by Flax's auto names (`Dense_0`,
`BatchNorm_0`): it still loads, under the layers' names, and predicts as it did."""

from __future__ import annotations

import numpy as np

import dlc
from dlc.compiler.lower import legacy_names
from dlc.runtime.storage import restore_checkpoint, save_checkpoint

SPEC = "dense 8 relu\nbatchnorm\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam lr=0.05\nepochs 2\n"


def test_a_run_saved_under_auto_names_loads_and_predicts_the_same(tmp_path):
    x = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
    program = dlc.compile(SPEC)
    program.fit(x, np.arange(24) % 3)
    run = program.save(tmp_path / "run")
    expected = program.predict(x)

    session = program.trained
    old_name = {new: old for old, new in legacy_names(session.program).items()}
    assert old_name == {"dense_1": "Dense_0", "batchnorm_1": "BatchNorm_0", "dense_2": "Dense_1"}
    named = {"params": session.state.params, "batch_stats": session.state.batch_stats}
    save_checkpoint(run / "checkpoint", {part: {old_name[k]: v for k, v in tree.items()} for part, tree in named.items()})
    assert set(restore_checkpoint(run / "checkpoint", None)["params"]) == {"Dense_0", "BatchNorm_0", "Dense_1"}

    reloaded = dlc.load_run(run)
    assert set(reloaded.trained.state.params) == {"dense_1", "batchnorm_1", "dense_2"}
    np.testing.assert_array_equal(reloaded.predict(x), expected)
