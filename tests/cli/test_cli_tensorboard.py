"""`dlc run --tensorboard`: every epoch's history row as TensorBoard scalars in RUN/tensorboard/
(`train/` and `validation/`, as Keras lays them out), read back with TensorBoard's own reader and
equal to history.csv; the writer library is imported only when asked, and never writes through a
link."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_cli_run import run_cli

from dlc.cli import EXIT_ERRORS, EXIT_OK

REPO = Path(__file__).resolve().parents[2]
SPEC = ("data iris val=0.2 test=0.2 normalize=standard\ndense 3 softmax\nloss categorical_crossentropy\n"
        "optimizer adam lr=0.05\nepochs 3\nmetrics accuracy\n")


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard run in `folder`: tag -> (step, value) in order."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tensorboard")
    (folder / "iris.dl").write_text(SPEC, encoding="utf-8")
    status, _, err = run_cli(["run", str(folder / "iris.dl"), "--out", str(folder / "run"), "-q", "--tensorboard"])
    assert status == EXIT_OK, err
    return folder / "run"


def test_every_epoch_of_history_is_in_the_event_files(run):
    with (run / "history.csv").open(newline="", encoding="utf-8") as f:
        history = list(csv.DictReader(f))
    expected = {"train": {}, "validation": {}}
    for column in history[0]:
        if column != "epoch":
            run_name, tag = ("validation", column[4:]) if column.startswith("val_") else ("train", column)
            # TensorBoard keeps a scalar as a 32-bit float
            expected[run_name][tag] = [(int(row["epoch"]), float(np.float32(row[column]))) for row in history]
    assert set(expected["train"]) == {"loss", "accuracy", "lr", "epoch_time"}
    for run_name, tags in expected.items():
        assert scalars(run / "tensorboard" / run_name) == tags


def test_a_linked_tensorboard_folder_is_refused_and_nothing_is_written_through_it(run, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    (copy / "tensorboard").rename(tmp_path / "events")
    (copy / "tensorboard").symlink_to(outside)
    status, _, err = run_cli(["run", str(run.parent / "iris.dl"), "--out", str(copy), "--resume", "-q",
                              "--tensorboard"])
    assert status == EXIT_ERRORS and f"`{copy / 'tensorboard'}` is a symbolic link" in err, err
    assert len(err.strip().splitlines()) == 1 and list(outside.iterdir()) == []


PROBE = """
import json, sys
from dlc.cli import main
status = main(sys.argv[1:])
print(json.dumps([status, "tensorboardX" in sys.modules]))
"""


def test_run_imports_the_writer_only_when_asked(tmp_path):
    (tmp_path / "iris.dl").write_text(SPEC.replace("epochs 3", "epochs 1"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", PROBE, "run", str(tmp_path / "iris.dl"), "--out",
                           str(tmp_path / "run"), "-q"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert json.loads(done.stdout.splitlines()[-1]) == [EXIT_OK, False], done.stderr
    assert not (tmp_path / "run" / "tensorboard").exists()
