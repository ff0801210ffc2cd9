"""The transfer-learning example of docs/transfer-learning.md: its data files are what
scripts/make_transfer_data.py writes, byte for byte on every run; its specs check, from where the
page tells the reader to run them; the page names files that exist. Nothing is trained here
(bench/transfer.py measures the page's table)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlc.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_transfer_data.py"
SPECS = REPO / "specs" / "transfer"
FILES = ["digits_0to4.npz", *(f"digits_5to9_{n}.npz" for n in (10, 25, 50, 100))]
PAGE = REPO / "docs" / "transfer-learning.md"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The script's files, written twice into two folders."""
    outs = [tmp_path_factory.mktemp(f"made{i}") for i in (1, 2)]
    for out in outs:
        subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True)
    return outs[0], outs[1]


def test_the_data_script_writes_the_same_bytes_every_time(made: tuple[Path, Path]) -> None:
    first, second = made
    assert sorted(p.name for p in first.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize("name", FILES)
def test_the_shipped_data_is_what_the_script_makes(made: tuple[Path, Path], name: str) -> None:
    with np.load(REPO / "data" / name, allow_pickle=False) as shipped, \
            np.load(made[0] / name, allow_pickle=False) as fresh:
        assert sorted(shipped.files) == ["x", "x_test", "y", "y_test"]
        for array in shipped.files:
            assert shipped[array].dtype == fresh[array].dtype
            np.testing.assert_array_equal(shipped[array], fresh[array])


def test_the_splits_hold_what_the_page_says() -> None:
    def load(name: str) -> dict[str, np.ndarray]:
        with np.load(REPO / "data" / name, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}

    base = load("digits_0to4.npz")
    assert set(np.unique(base["y"])) == set(np.unique(base["y_test"])) == set(range(5))
    tests = []
    smaller: set[bytes] = set()
    for n in (10, 25, 50, 100):
        few = load(f"digits_5to9_{n}.npz")
        assert np.bincount(few["y"], minlength=10).tolist() == [0] * 5 + [n] * 5
        assert np.bincount(few["y_test"], minlength=10).tolist() == [0] * 5 + [70] * 5
        train = {row.tobytes() for row in few["x"]}
        assert smaller <= train  # each training set holds the smaller ones
        assert not train & {row.tobytes() for row in few["x_test"]}  # never a test example
        smaller = train
        tests.append(few["x_test"])
        assert few["x"].shape[1:] == (64,) and 0 <= few["x"].min() and few["x"].max() <= 1
    assert all(np.array_equal(t, tests[0]) for t in tests)  # one test set for every size


def test_the_shipped_specs_check_from_the_repository_layout(tmp_path: Path, capsys) -> None:
    """From a copy of the layout the page uses (specs/transfer/, data/, runs/digits_0to4/), with a run
    folder that holds only base.dl as its spec.dl (`dlc check` reads no more of it)."""
    shutil.copytree(SPECS, tmp_path / "specs" / "transfer")
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("*.csv"))
    run = tmp_path / "runs" / "digits_0to4"
    run.mkdir(parents=True)
    shutil.copy(SPECS / "base.dl", run / "spec.dl")
    specs = sorted(str(p) for p in (tmp_path / "specs" / "transfer").glob("*.dl"))
    assert [Path(s).name for s in specs] == ["base.dl", "finetune.dl", "scratch.dl", "transfer.dl"]
    assert main(["check", *specs]) == 0, capsys.readouterr().err
    assert "4 specs ok" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "specs" / "transfer" / "transfer.dl"), "--emit", "summary"]) == 0
    summary = capsys.readouterr().out
    assert re.search(r"conv1 .* from run, frozen", summary) and re.search(r"head_5to9 .* fresh", summary)


def test_transfer_and_scratch_differ_only_in_init_and_freezing() -> None:
    def body(name: str) -> list[str]:
        lines = [line for line in (SPECS / name).read_text().splitlines() if not line.startswith(("#", "model"))]
        return [line.replace(" trainable=false", "") for line in lines if not line.startswith("init ")]

    assert body("transfer.dl") == body("scratch.dl") == body("finetune.dl")
    assert "trainable=false" not in (SPECS / "finetune.dl").read_text()


def test_the_page_names_files_that_exist() -> None:
    text = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:specs|data|scripts|bench)/[\w./-]+\.(?:dl|npz|py))`", text))
    assert {"specs/transfer/base.dl", "specs/transfer/transfer.dl", "scripts/make_transfer_data.py",
            "bench/transfer.py"} <= named
    for path in named:
        assert (REPO / path).exists(), path
    assert "| 10 |" in text and "| 100 |" in text  # the measured table
