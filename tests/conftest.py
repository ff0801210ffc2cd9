"""Fixtures shared by the test folders."""

from __future__ import annotations

import os
import tempfile

# Compiled programs go to a cache of this test session, never the user's (~/.cache/dlc/xla).
os.environ.setdefault("DLC_CACHE_DIR", tempfile.mkdtemp(prefix="dlc-tests-xla-"))

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data files that case files and the examples of `dlc/compiler/codes.py` name.

    - `houses.csv`: columns `rooms,area,price` (two features and a regression target)
    - `messages.csv`: columns `id,text,topic` (a column of text, and two topics)
    - `empty.csv`: an empty file
    - `objects.npz`: `x` is an object array, which must never be unpickled
    - `classes.npz`: 4 features, integer class labels, and a validation split (`x_val`, `y_val`)
    - `multilabel.npz`: 4 features and 5 labels of 0/1 per example
    - `runs/base/`: a run folder of `data digits`, `input 64`, `dense 10 softmax` (layer `dense_1`, 64x10;
      its spec.dl only: the checker reads no more of a run that `init` names)
    - `runs/broken/`: a run folder whose spec.dl has an error
    """
    import numpy as np  # only here: checking never needs NumPy, building these files does

    root = tmp_path_factory.mktemp("data")
    (root / "houses.csv").write_text("rooms,area,price\n3,120,250000\n2,80,180000\n4,150,320000\n", encoding="utf-8")
    (root / "messages.csv").write_text('id,text,topic\n1,"the meeting moved to noon",work\n'
                                       '2,"dinner at eight",home\n3,"figures are due friday",work\n', encoding="utf-8")
    (root / "empty.csv").write_bytes(b"")
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, {"b": 2}]
    np.savez(root / "objects.npz", x=objects, y=np.array([0, 1]))
    rng = np.random.default_rng(0)
    np.savez(root / "classes.npz", x=rng.normal(size=(12, 4)).astype("float32"), y=np.arange(12) % 3,
             x_val=rng.normal(size=(3, 4)).astype("float32"), y_val=np.arange(3))
    np.savez(root / "multilabel.npz", x=rng.normal(size=(12, 4)).astype("float32"),
             y=(rng.random(size=(12, 5)) > 0.5).astype("float32"))
    for run, spec in (("base", "data digits val=0.2\ninput 64\ndense 10 softmax\nloss categorical_crossentropy\n"
                                "optimizer adam\n"), ("broken", "input 64\ndense 32 rleu\n")):
        (root / "runs" / run).mkdir(parents=True)
        (root / "runs" / run / "spec.dl").write_text(spec, encoding="utf-8")
    return root
