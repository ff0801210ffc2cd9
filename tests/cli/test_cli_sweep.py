"""`dlc run` of a sweep: a run folder per member named by its label (which `dlc eval` and `dlc
predict` use as any run's), `sweep.csv`, the members ranked by the monitor; a diverged member is
a row saying so; flags a sweep cannot honour yet are refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_run import read_csv, run_cli

from dlc.cli import EXIT_ERRORS, EXIT_OK
from dlc.command_line import EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
IRIS = (ROOT / "specs" / "iris.dl").read_text().replace("epochs 200", "epochs 2")
SWEEP = IRIS.replace("lr=0.1 ", "lr=[0.1, 0.01] ") + "seed [0, 1]\n"


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, str]:
    """(folder, stdout) of a 4-member sweep of iris, 2 epochs each."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "iris.dl").write_text(SWEEP, encoding="utf-8")
    status, out, err = run_cli(["run", str(folder / "iris.dl"), "--out", str(folder / "out")])
    assert status == EXIT_OK, err
    return folder / "out", out


def test_a_sweep_writes_a_run_folder_per_member_and_sweep_csv(swept) -> None:
    out, _ = swept
    labels = ["lr=0.1,seed=0", "lr=0.1,seed=1", "lr=0.01,seed=0", "lr=0.01,seed=1"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([*labels, "sweep.csv"])
    for label in labels:
        assert {"spec.dl", "history.csv", "metrics.json", "checkpoint", "preprocessing.json", "run.json"} <= \
            {p.name for p in (out / label).iterdir()}
    rows = read_csv(out / "sweep.csv")
    assert rows[0][:4] == ["lr", "seed", "epochs_run", "best_epoch"]
    assert {"train_loss", "val_loss", "val_accuracy", "test_accuracy"} <= set(rows[0])
    assert [r[:3] for r in rows[1:]] == [["0.1", "0", "2"], ["0.1", "1", "2"], ["0.01", "0", "2"], ["0.01", "1", "2"]]


def test_the_members_are_ranked_by_val_loss_best_first(swept) -> None:
    out, shown = swept
    rows = read_csv(out / "sweep.csv")
    val_loss = {f"lr={r[0]},seed={r[1]}": float(r[rows[0].index("val_loss")]) for r in rows[1:]}
    table = [line.split() for line in shown.splitlines() if line.startswith("lr=")]
    assert [r[0] for r in table] == sorted(val_loss, key=val_loss.get)
    assert "ranked by val_loss" in shown


def test_eval_and_predict_use_a_member_folder(swept, tmp_path: Path) -> None:
    member = swept[0] / "lr=0.1,seed=0"
    status, out, err = run_cli(["eval", str(member)])
    assert status == EXIT_OK, err
    assert out.startswith("split")
    (tmp_path / "x.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    status, out, err = run_cli(["predict", str(member), str(tmp_path / "x.csv")])
    assert status == EXIT_OK, err
    assert len(out.splitlines()) == 2


def test_a_diverged_member_is_a_row_and_the_sweep_still_succeeds(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text(IRIS.replace("lr=0.1 ", "lr=[1e9, 0.1] "), encoding="utf-8")
    status, out, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out")])
    assert status == EXIT_OK, err
    assert "sweep member lr=1e9: training diverged at epoch 1" in err
    assert [line.split()[0] for line in out.splitlines() if line.startswith("lr=")] == ["lr=0.1", "lr=1e9"]
    assert "diverged at epoch 1" in out
    rows = read_csv(tmp_path / "out" / "sweep.csv")
    assert rows[1][:3] == ["1000000000.0", "1", ""] and set(rows[1][3:]) == {""}
    assert (tmp_path / "out" / "lr=1e9" / "history.csv").is_file()


def test_a_sweep_whose_every_member_diverged_fails(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text(IRIS.replace("lr=0.1 ", "lr=[1e9, 1e10] "), encoding="utf-8")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out")])
    assert status == EXIT_ERRORS
    assert err.splitlines()[-1].startswith("dlc: error: every member of the sweep diverged")


@pytest.mark.parametrize("flags", [["--resume"], ["--repeat-check"], ["--devices", "1"], ["--distributed"]])
def test_flags_a_sweep_does_not_support_are_refused(tmp_path: Path, flags: list[str]) -> None:
    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    status, out, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out"), *flags])
    assert (status, out) == (EXIT_USAGE, "")
    assert err == f"dlc: error: {tmp_path / 's.dl'} is a sweep: sweeps do not support {flags[0]} yet\n"
    assert not (tmp_path / "out").exists()


def test_a_sweep_refuses_a_folder_that_is_not_empty_or_a_link(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out")])
    assert status == EXIT_USAGE and "already exists and is not empty" in err
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "link")])
    assert status == EXIT_USAGE and "is a symbolic link" in err
    assert list((tmp_path / "elsewhere").iterdir()) == []
