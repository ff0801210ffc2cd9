"""A sweep over `seed` with `val=`/`test=`: each member's split is drawn from its seed, as its lone
run draws it, and the members still train as one vmapped program, each on its own split (stacked
on a member axis), each member's history that of `dlc run` of its spec alone (within 1e-4) and its
preprocessing.json its lone run's, byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_cli_run import read_csv, run_cli
from test_cli_sweep import IRIS, numbers

from dlc.cli import EXIT_OK

SEEDS = IRIS.replace("epochs 2", "epochs 3") + "seed [0, 1, 2]\n"


def test_a_seed_sweep_with_val_trains_as_one_group_each_member_as_its_lone_run(tmp_path: Path) -> None:
    spec = tmp_path / "s.dl"
    spec.write_text(SEEDS, encoding="utf-8")
    status, _, err = run_cli(["run", str(spec), "--out", str(tmp_path / "sweep"), "-q"])
    assert status == EXIT_OK, err
    assert sorted(p.name for p in (tmp_path / "sweep" / "training").iterdir() if p.name != ".lock") == ["group-0"]
    members = sorted(p for p in (tmp_path / "sweep").iterdir() if p.name.startswith("seed="))
    assert [p.name for p in members] == ["seed=0", "seed=1", "seed=2"]
    splits = set()
    for member in members:
        status, _, err = run_cli(["run", str(member / "spec.dl"), "--out", str(tmp_path / member.name), "-q"])
        assert status == EXIT_OK, err
        together, alone = numbers(member), numbers(tmp_path / member.name)
        assert together[0] == alone[0] and len(together) == len(alone), member.name
        # within 1e-4 (seen: bit for bit, or a few float32 ulps in `val_loss`, summed on the device here)
        assert np.allclose(np.array(together[1:], float), np.array(alone[1:], float), rtol=1e-4, atol=1e-6), member.name
        assert (member / "preprocessing.json").read_bytes() == (tmp_path / member.name / "preprocessing.json").read_bytes()
        splits.add((member / "preprocessing.json").read_text())
    assert len(splits) == 3  # each member normalized by its own training split's statistics
    assert len(read_csv(tmp_path / "sweep" / "sweep.csv")) == 4
