"""`dlc run` of a sweep: a run folder per member named by its label (which `dlc eval` and `dlc
predict` use as any run's), `sweep.csv`, `sweep.png`, the members ranked by the monitor; a
diverged member is a row saying so; Ctrl-C saves the sweep and `--resume` finishes it as if never
stopped; the progress on a terminal; `--repeat-check`, `--tensorboard` and `--deterministic` as for a single run."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
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
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        sorted([*labels, "sweep.csv", "sweep.png", "spec.dl", "training"])
    for label in labels:
        assert {"spec.dl", "history.csv", "metrics.json", "checkpoint", "preprocessing.json", "run.json"} <= \
            {p.name for p in (out / label).iterdir()}
    rows = read_csv(out / "sweep.csv")
    assert rows[0][:4] == ["lr", "seed", "epochs_run", "best_epoch"]
    assert {"train_loss", "val_loss", "val_accuracy", "test_accuracy"} <= set(rows[0])
    assert [r[:3] for r in rows[1:]] == [["0.1", "0", "2"], ["0.1", "1", "2"], ["0.01", "0", "2"], ["0.01", "1", "2"]]


def test_members_differing_in_a_penalty_write_ordinary_folders(tmp_path: Path) -> None:
    """A group whose members' divergence baselines hold their own penalties writes every member's
    run.json as any run's (the baseline once took the place of the wall time there)."""
    import json

    (tmp_path / "s.dl").write_text(IRIS.replace("dense 16 tanh", "dense 16 tanh l2=[0, 1e-3]"), encoding="utf-8")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out")])
    assert status == EXIT_OK, err
    for label in ("dense_1.l2=0", "dense_1.l2=1e-3"):
        record = json.loads((tmp_path / "out" / label / "run.json").read_text())
        assert isinstance(record["wall_time"], float) and len(read_csv(tmp_path / "out" / label / "history.csv")) == 3


def test_sweep_png_compares_the_members_validation_curves(swept) -> None:
    out, _ = swept
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_sweep_figure_emphasizes_the_best_member_and_names_the_best_ones() -> None:
    from dlc.runtime.plots import LEGEND_MEMBERS, sweep_figure

    curves = [(f"lr={i}", [{"epoch": 1, "val_loss": 2.0 + i}, {"epoch": 2, "val_loss": 0.01 + i}], i == 3)
              for i in range(LEGEND_MEMBERS + 4)]
    figure = sweep_figure(curves, "val_loss", "mlp", best="lr=0")
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["lr=0 (best)"].get_linewidth() > lines["lr=1"].get_linewidth()
    assert lines["lr=3"].get_linestyle() == "--"  # diverged
    names = [text.get_text() for text in ax.get_legend().get_texts()]
    assert names == ["lr=0 (best)", *(f"lr={i}" for i in range(1, LEGEND_MEMBERS)), "other members"]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "val_loss"


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


def test_a_sweep_repeat_check_trains_every_member_again_and_compares_every_number(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    status, out, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out"), "-q",
                                "--repeat-check"])
    assert status == EXIT_OK, err
    assert out.splitlines()[-1] == ("repeat check: a second run of the sweep gave every member's identical history "
                                    "(8 epochs in all) and parameters")


def test_the_repeat_check_names_the_first_member_that_differs() -> None:
    from dlc.runtime.commands import RunFailed, same_again

    first = {"lr=0.1": (None, [{"epoch": 1, "loss": 1.0, "epoch_time": 0.1}]),
             "lr=0.01": (None, [{"epoch": 1, "loss": 2.0, "epoch_time": 0.1}])}
    second = {"lr=0.1": (None, [{"epoch": 1, "loss": 1.0, "epoch_time": 0.3}]),
              "lr=0.01": (None, [{"epoch": 1, "loss": 2.5, "epoch_time": 0.1}])}
    with pytest.raises(RunFailed, match=r"a different history of member lr=0\.01$"):
        same_again(first, second)
    assert "identical history (2 epochs in all)" in same_again(first, first)


def test_a_sweep_writes_each_members_tensorboard_events_side_by_side(tmp_path: Path) -> None:
    from test_cli_tensorboard import scalars

    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out"), "-q", "--tensorboard"])
    assert status == EXIT_OK, err
    labels = ["lr=0.1,seed=0", "lr=0.1,seed=1", "lr=0.01,seed=0", "lr=0.01,seed=1"]
    assert sorted(p.name for p in (tmp_path / "out" / "tensorboard").iterdir()) == sorted(labels)
    for label in labels:
        history = read_csv(tmp_path / "out" / label / "history.csv")
        loss = [(int(row[0]), float(np.float32(row[history[0].index("val_loss")]))) for row in history[1:]]
        assert scalars(tmp_path / "out" / "tensorboard" / label / "validation")["loss"] == loss


def test_a_sweep_asks_xla_for_deterministic_kernels(tmp_path: Path, monkeypatch) -> None:
    import os

    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("TF_CUDNN_DETERMINISTIC", "0")  # restored after the test, as XLA_FLAGS
    (tmp_path / "s.dl").write_text(SWEEP.replace("epochs 2", "epochs 1"), encoding="utf-8")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out"), "-q",
                              "--deterministic"])
    assert status == EXIT_OK, err
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"


def test_a_sweep_refuses_a_folder_that_is_not_empty_or_a_link(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "out")])
    assert status == EXIT_USAGE and "already exists and is not empty" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]  # refused before a lock file is left
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    status, _, err = run_cli(["run", str(tmp_path / "s.dl"), "--out", str(tmp_path / "link")])
    assert status == EXIT_USAGE and "is a symbolic link" in err
    assert list((tmp_path / "elsewhere").iterdir()) == []


RESUMED = IRIS.replace("epochs 2", "epochs 5").replace("early_stop 20", "early_stop 1").replace(
    "lr=0.1 ", "lr=[0.1, 3.0] ") + "seed [0, 1]\n"


def numbers(run: Path) -> list[list[str]]:
    """history.csv without the timings, which are the one thing allowed to differ."""
    rows = read_csv(run / "history.csv")
    timing = rows[0].index("epoch_time")
    return [row[:timing] + row[timing + 1:] for row in rows]


def _steps(group: Path) -> int:
    return sum(p.name.isdigit() for p in group.iterdir()) if group.is_dir() else 0


def _stop_when(monkeypatch: pytest.MonkeyPatch, asked) -> None:
    """Ctrl-C as the CLI sees it: `asked()` says when one has come."""
    from dlc.runtime.interrupts import Interrupts

    monkeypatch.setattr(Interrupts, "requested", property(lambda self: asked()))


def test_an_interrupted_sweep_resumed_writes_what_an_uninterrupted_one_writes(tmp_path: Path, monkeypatch) -> None:
    """Every member's history.csv (but the timings) and sweep.csv, bit for bit."""
    spec = tmp_path / "s.dl"
    spec.write_text(RESUMED, encoding="utf-8")
    status, _, err = run_cli(["run", str(spec), "--out", str(tmp_path / "whole"), "-q"])
    assert status == EXIT_OK, err
    out = tmp_path / "stopped"
    _stop_when(monkeypatch, lambda: _steps(out / "training" / "group-0") >= 2)
    status, _, err = run_cli(["run", str(spec), "--out", str(out), "-q", "--checkpoint-interval", "0"])
    assert status == 130, err
    assert err.splitlines()[-2].startswith("dlc: interrupted after epoch") and "the sweep is saved" in err
    assert err.splitlines()[-1] == f"  dlc run {spec} --out {out} --resume"
    assert not (out / "sweep.csv").exists()
    monkeypatch.undo()
    status, _, err = run_cli(["run", str(spec), "--out", str(out), "-q", "--resume"])
    assert status == EXIT_OK, err
    assert read_csv(out / "sweep.csv") == read_csv(tmp_path / "whole" / "sweep.csv")
    for member in (p for p in (tmp_path / "whole").iterdir() if "=" in p.name):
        assert numbers(out / member.name) == numbers(member), member.name
    assert any(len(numbers(member)) < 6 for member in out.iterdir() if "=" in member.name)  # stopped early


def test_a_sweep_resumed_with_a_changed_spec_is_refused(tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "s.dl"
    spec.write_text(RESUMED, encoding="utf-8")
    out = tmp_path / "out"
    _stop_when(monkeypatch, lambda: _steps(out / "training" / "group-0") >= 1)
    assert run_cli(["run", str(spec), "--out", str(out), "-q", "--checkpoint-interval", "0"])[0] == 130
    monkeypatch.undo()
    spec.write_text(RESUMED.replace("dense 16 tanh", "dense 17 tanh"), encoding="utf-8")
    status, _, err = run_cli(["run", str(spec), "--out", str(out), "-q", "--resume"])
    assert status == EXIT_ERRORS
    assert f"cannot resume `{out}`: the spec changed since the sweep started: line 4: `dense 16 tanh` became " \
           "`dense 17 tanh`; --resume only finishes a sweep as it started" in err
    spec.write_text(RESUMED, encoding="utf-8")
    status, _, err = run_cli(["run", str(spec), "--out", str(out), "-q", "--resume", "--epochs", "4"])
    assert status == EXIT_ERRORS
    assert f"cannot resume `{out}`: epochs (5 -> 4) changed since the sweep started" in err


def test_a_sweep_interrupted_before_its_first_checkpoint_says_nothing_was_saved(tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "s.dl"
    spec.write_text(RESUMED, encoding="utf-8")
    out = tmp_path / "out"
    _stop_when(monkeypatch, lambda: (out / "spec.dl").exists())
    status, _, err = run_cli(["run", str(spec), "--out", str(out), "-q"])
    assert status == 130
    assert err.splitlines()[-2:] == ["dlc: interrupted before the first checkpoint; nothing was saved. Start the "
                                     "sweep again with:", f"  dlc run {spec} --out {out}"]
    assert not out.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_sweep_progress_shows_the_members_training_and_the_best_so_far() -> None:
    from dlc.runtime.progress import SweepProgress

    terminal = _Terminal()
    progress = SweepProgress(3, "iris", ["lr=0.1", "lr=0.01"], None, stream=terminal)
    progress.compiled(1.5, False)
    progress(1, {"member": 0, "epoch": 1, "loss": 1.0, "val_loss": 0.9})
    progress(1, {"member": 1, "epoch": 1, "loss": 1.0, "val_loss": 0.5})
    progress(2, {"member": 0, "epoch": 2, "loss": 0.8, "val_loss": 0.7})
    progress.close()
    shown = terminal.getvalue()
    assert "iris sweep, epoch" in shown and "2/3" in shown
    assert "1 member training · best val_loss 0.5000 (lr=0.01)" in shown


def test_the_sweep_progress_is_quiet_off_a_terminal_and_when_asked() -> None:
    from dlc.runtime.progress import SweepProgress

    for stream, quiet in ((io.StringIO(), False), (_Terminal(), True)):
        progress = SweepProgress(3, "iris", ["lr=0.1"], "val_accuracy", "max", stream=stream, quiet=quiet)
        progress(1, {"member": 0, "epoch": 1, "loss": 1.0, "val_accuracy": 0.5})
        progress.close()
        assert stream.getvalue() == ""


def test_a_sweep_runs_its_members_over_two_devices(tmp_path: Path) -> None:
    """`--devices 2` on a machine XLA_FLAGS gives two CPU devices: the 4 members split 2 and 2."""
    import os
    import subprocess
    import sys

    (tmp_path / "s.dl").write_text(SWEEP, encoding="utf-8")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", str(tmp_path / "s.dl"), "--out",
                           str(tmp_path / "out"), "--devices", "2", "-q"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == EXIT_OK, done.stderr
    assert len(read_csv(tmp_path / "out" / "sweep.csv")) == 5
