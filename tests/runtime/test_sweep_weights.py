"""Sweep members whose balanced class weights differ (a seed sweep with `val=`: each member's
training split, drawn from its seed, counts its classes differently) train as one vmapped program,
each weighing its loss by its own split's weights: each member's history is its lone run's (1e-4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_sweep import _numbers, _program, _vary
from test_sweep_data import _alone, _own, _ways

from dlc.runtime import measures, sweep
from dlc.runtime.options import FitOptions


def test_members_weighing_their_classes_differently_train_as_one_program_each_as_alone(
        monkeypatch: pytest.MonkeyPatch):
    base = _program(epochs=2)
    base = dataclasses.replace(base, loss=dataclasses.replace(base.loss, args={**base.loss.args,
                                                                               "class_weight": "balanced"}))
    data = [_own(s) for s in range(3)]
    members = [dataclasses.replace(_vary(base, seed=s), class_weights=measures.class_weights(base, own.train.y))
               for s, own in enumerate(data)]
    weights = np.array([m.class_weights for m in members])
    assert np.ptp(weights, axis=0).max() > 0.05  # the splits count their classes differently
    ways = _ways(monkeypatch)
    together = sweep._train_all(members, data, FitOptions())
    assert ways == [("vmapped", 3, (3, 64, 4))]
    for member, own, outcome in zip(members, data, together, strict=True):
        lone = _alone(member, own)
        np.testing.assert_allclose(_numbers(outcome.history), _numbers(lone.history), rtol=1e-4, atol=1e-6)
