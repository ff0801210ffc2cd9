"""On a CPU, models with convolutions train one compiled step per mini-batch (XLA:CPU runs the
backward convolutions far slower inside a scan); it must be the same training as the scan."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

import dlc
from dlc.runtime.loop import fit
from dlc.runtime.options import FitOptions
from dlc.runtime.train import init_state, make_trainer

SPEC = """\
input 6x6x1
conv2d 4 3x3 relu padding=same
dropout 0.1
batchnorm
maxpool2d 2
flatten
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=1e-2
batch 8
epochs 2
metrics accuracy
"""


def test_a_conv_model_on_a_cpu_trains_by_steps_and_equals_the_scan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6, 6, 1)).astype(np.float32)  # 30 = 3 full batches and a padded one
    y = rng.integers(0, 3, 30).astype(np.int32)
    program = dlc.compile(SPEC).recheck(None)
    by_steps = make_trainer(program, len(x), program.epochs)
    assert by_steps.per_step == (jax.default_backend() == "cpu")
    scan = dataclasses.replace(by_steps, per_step=False)
    results = [fit(t, init_state(t, program.input_shape, 0), (x, y), None, FitOptions())
               for t in (dataclasses.replace(by_steps, per_step=True), scan)]
    for a, b in zip(results[0].history, results[1].history):
        for key in ("loss", "accuracy"):
            assert abs(a[key] - b[key]) <= 1e-5, (key, a[key], b[key])
    for a, b in zip(jax.tree.leaves(results[0].state.params), jax.tree.leaves(results[1].state.params)):
        assert np.allclose(a, b, atol=1e-5)


def test_dense_models_keep_the_scan():
    program = dlc.compile("input 4\ndense 2 softmax\nloss categorical_crossentropy\noptimizer adam").recheck(None)
    assert not make_trainer(program, 10, 1).per_step
