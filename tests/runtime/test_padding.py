"""The padding of a last partial batch never changes what is learned: it is masked out of the
loss, and out of batchnorm's statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import dlc
from dlc.compiler.lower import lower


def test_batchnorm_statistics_leave_the_padding_out():
    program = dlc.compile("input 3\nbatchnorm\nloss mse\noptimizer adam").recheck(None)
    module = lower(program).module
    real = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
    padded = jnp.concatenate([real, jnp.full((3, 3), 100.0)])
    rows = jnp.asarray([1.0] * 5 + [0.0] * 3)
    variables = module.init(jax.random.key(0), real)
    alone, alone_stats = module.apply(variables, real, train=True, mutable=["batch_stats"])
    masked, masked_stats = module.apply(variables, padded, train=True, rows=rows, mutable=["batch_stats"])
    assert np.allclose(masked[:5], alone, atol=1e-5)
    for a, b in zip(jax.tree.leaves(alone_stats), jax.tree.leaves(masked_stats)):
        assert np.allclose(a, b, atol=1e-6)
