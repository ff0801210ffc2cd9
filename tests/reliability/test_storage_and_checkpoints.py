"""Storage that fails under a run, checkpoints that are damaged, and run folders that are not what
they seem: a full disk, a read-only folder, `training/` deleted mid-run, a newest step without
its `meta` or `state`, stray entries under `training/`, and parts of a run folder that are
symbolic links. Each fault is one `dlc: error:` line (or a `dlc: warning:` and a run that heals),
never a traceback; what was kept resumes to exactly the numbers of an uninterrupted run, and
nothing outside the run folder is written or deleted."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_no_crash, assert_refused, dlc

from dlc.cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE

SPEC = """\
model stored
data digits val=0.2 normalize=standard
dense 16 relu
dense 10 softmax
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 64
epochs 4
metrics accuracy
"""
EVERY_EPOCH = ("--checkpoint-interval", "0")


def numbers(run: Path) -> list[dict]:
    """history.csv without the timings, which are the one thing allowed to differ."""
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "stored.dl"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def uninterrupted(spec, tmp_path_factory) -> Path:
    """The run every faulty one must end up equal to."""
    run = tmp_path_factory.mktemp("runs") / "whole"
    answer = dlc("run", str(spec), "--out", str(run), "-q", *EVERY_EPOCH)
    assert answer.status == EXIT_OK, answer.err
    return run


def resume(spec: Path, run: Path):
    return dlc("run", str(spec), "--out", str(run), "-q", "--resume")


def continue_after(spec: Path, run: Path, err: str):
    """`--resume` where a checkpoint was kept; else the run again (a run folder that never got a
    checkpoint is removed by `dlc run`, or, if it is left, resumed from epoch 1)."""
    if "is kept" in err or (run / "spec.dl").exists():
        return resume(spec, run)
    return dlc("run", str(spec), "--out", str(run), "-q", *EVERY_EPOCH)


@pytest.fixture
def disk(tmp_path) -> Path:
    """A 3 MiB file system of its own, to fill."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave_kib: int) -> Path:
    """Fill `disk` to all but `leave_kib` KiB."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    size = stats.f_bavail * stats.f_frsize - leave_kib * 1024
    with filler.open("wb") as f:
        if size > 0:
            os.posix_fallocate(f.fileno(), 0, size)
    return filler


def one_error_line(err: str, says: str) -> None:
    """Only dlc's own lines on stderr (warnings, then one error), nothing of Orbax's threads."""
    lines = err.splitlines()
    assert lines and lines[-1].startswith("dlc: error:") and says in lines[-1], err[-3000:]
    assert all(line.startswith("dlc: warning:") for line in lines[:-1]), err[-3000:]


# --- a full disk ---------------------------------------------------------------------------------


def test_a_real_process_on_a_full_disk_prints_one_line_and_resumes_exactly(spec, uninterrupted, disk):
    """Room for about two steps: a later checkpoint fails, in Orbax's background threads."""
    filler = fill(disk, 180)
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", str(spec), "--out", str(disk / "run"), "-q",
                           *EVERY_EPOCH], capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_ERRORS, done.stderr
    one_error_line(done.stderr, "No space left on device")
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "the checkpoint of epoch" in done.stderr.splitlines()[-1], done.stderr
    filler.unlink()
    answer = resume(spec, disk / "run")
    assert answer.status == EXIT_OK, answer.err
    assert numbers(disk / "run") == numbers(uninterrupted)


@pytest.mark.parametrize("leave_kib", [40, 120])
def test_a_full_disk_during_training_is_one_line_and_the_run_resumes_exactly(spec, uninterrupted, disk, leave_kib,
                                                                             capfd):
    filler = fill(disk, leave_kib)
    answer = dlc("run", str(spec), "--out", str(disk / "run"), "-q", *EVERY_EPOCH)
    assert_refused(answer, "No space left on device")
    assert str(disk / "run" / "training") in answer.err
    one_error_line(capfd.readouterr().err + answer.err, "No space left on device")
    filler.unlink()
    answer = continue_after(spec, disk / "run", answer.err)
    assert answer.status == EXIT_OK, answer.err
    assert numbers(disk / "run") == numbers(uninterrupted)


def test_a_disk_that_fills_while_the_run_folder_is_written_keeps_the_checkpoints(spec, uninterrupted, disk,
                                                                                 monkeypatch, capfd):
    """Training ends, then the disk is full: the run folder cannot be written, the training
    checkpoints stay, and `--resume` writes the run folder with the same numbers."""
    from dlc.runtime import runfolder

    original = runfolder.write_run

    def fill_then_write(run_dir, session):
        fill(disk, 0)
        return original(run_dir, session)

    monkeypatch.setattr(runfolder, "write_run", fill_then_write)
    answer = dlc("run", str(spec), "--out", str(disk / "run"), "-q", *EVERY_EPOCH)
    assert_refused(answer, "No space left on device")
    assert "the training checkpoints in" in answer.err and "are kept" in answer.err
    one_error_line(capfd.readouterr().err + answer.err, "No space left on device")
    monkeypatch.setattr(runfolder, "write_run", original)
    (disk / "filler").unlink()
    answer = resume(spec, disk / "run")
    assert answer.status == EXIT_OK, answer.err
    assert numbers(disk / "run") == numbers(uninterrupted)


def test_a_read_only_folder_on_resume_is_one_line(spec, uninterrupted, disk):
    run = Path(shutil.copytree(uninterrupted, disk / "run"))
    shutil.rmtree(run / "training" / "4")  # so that the resumed run has an epoch to train and save
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    if remounted.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {remounted.stderr.strip()}")
    answer = resume(spec, run)  # refused when the run is locked, or when epoch 4 is saved
    assert_no_crash(answer)
    assert answer.status in (EXIT_ERRORS, EXIT_USAGE), answer.err
    one_error_line(answer.err, "Read-only file system")
    assert (run / "training" / "3").is_dir()


def test_a_checkpoint_on_a_read_only_disk_is_one_error_naming_what_is_kept(uninterrupted, disk):
    import jax.numpy as jnp

    from dlc.runtime.checkpoints import TrainingCheckpoints
    from dlc.runtime.stopping import Progress
    from dlc.runtime.storage import StorageError
    from dlc.runtime.train import TrainState

    shutil.copytree(uninterrupted / "training" / "3", disk / "training" / "3")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    checkpoints = TrainingCheckpoints(disk / "training", {"seed": 0}, interval=0)
    state = TrainState({"w": jnp.ones(2)}, {}, ())
    with pytest.raises(StorageError, match=r"cannot write the checkpoint of epoch 4 in `.*training`: Read-only "
                                           "file system; the checkpoint of epoch 3 is kept"):
        checkpoints.save(state, None, Progress(epoch=4), force=True)
        checkpoints.close()
    checkpoints.close()  # after the failure it reported, nothing more


def test_training_deleted_mid_run_is_one_line_and_the_run_resumes_exactly(spec, uninterrupted, tmp_path,
                                                                          monkeypatch):
    from dlc.runtime.checkpoints import TrainingCheckpoints

    original = TrainingCheckpoints.save

    def delete_after_epoch_2(self, state, best, progress, force=False):
        original(self, state, best, progress, force)
        if progress.epoch == 2:
            self.manager.wait_until_finished()
            shutil.rmtree(self.folder)

    monkeypatch.setattr(TrainingCheckpoints, "save", delete_after_epoch_2)
    run = tmp_path / "run"
    answer = dlc("run", str(spec), "--out", str(run), "-q", *EVERY_EPOCH)
    assert_refused(answer, f"cannot write the checkpoint of epoch 3 in `{run / 'training'}`: No such file or directory")
    monkeypatch.setattr(TrainingCheckpoints, "save", original)
    answer = continue_after(spec, run, answer.err)
    assert answer.status == EXIT_OK, answer.err
    assert numbers(run) == numbers(uninterrupted)


# --- checkpoints that heal -----------------------------------------------------------------------


@pytest.fixture
def run_copy(uninterrupted, tmp_path) -> Path:
    """A copy of the finished run, its newest step (4) to damage; step 3 is complete."""
    run = Path(shutil.copytree(uninterrupted, tmp_path / "run"))
    assert sorted(p.name for p in (run / "training").iterdir() if p.name.isdigit()) == ["3", "4"]
    return run


def edit_meta(step: Path, **fields) -> None:
    meta = step / "meta" / "metadata"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | fields))


DAMAGE = {
    "no meta": lambda step: shutil.rmtree(step / "meta"),
    "no state": lambda step: shutil.rmtree(step / "state"),
    "state garbage": lambda step: [f.write_bytes(b"garbage") for f in (step / "state").rglob("*") if f.is_file()],
    "meta not JSON": lambda step: (step / "meta" / "metadata").write_text("{"),
    "meta of another epoch": lambda step: edit_meta(step, epoch=9),
    "meta history shortened": lambda step: edit_meta(step, history=[]),
    "meta waited not a count": lambda step: edit_meta(step, waited="x"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_newest_step_falls_back_to_the_last_complete_one(spec, uninterrupted, run_copy, damage):
    damage(run_copy / "training" / "4")
    answer = resume(spec, run_copy)
    assert answer.status == EXIT_OK, answer.err
    warnings = [line for line in answer.err.splitlines() if "damaged checkpoint" in line]
    assert len(warnings) == 1 and warnings[0].startswith("dlc: warning: skipped 1 damaged checkpoint"), answer.err
    assert "training/4" in warnings[0] and "continuing from epoch 3" in warnings[0]
    assert numbers(run_copy) == numbers(uninterrupted)
    assert json.loads((run_copy / "metrics.json").read_text()) == \
        json.loads((uninterrupted / "metrics.json").read_text())


def test_every_step_damaged_trains_again_from_the_start(spec, uninterrupted, run_copy):
    for step in ("3", "4"):
        shutil.rmtree(run_copy / "training" / step / "state")
    answer = resume(spec, run_copy)
    assert answer.status == EXIT_OK, answer.err
    assert "skipped 2 damaged checkpoints" in answer.err and "starts again from epoch 1" in answer.err
    assert numbers(run_copy) == numbers(uninterrupted)


STRAYS = {
    "a file named 1000": lambda training: (training / "1000").write_text("not a step"),
    "an empty folder named 1000": lambda training: (training / "1000").mkdir(),
    "a folder named 0 with notes": lambda training: ((training / "0").mkdir(), (training / "0" / "n").write_text("x")),
    "notes.txt": lambda training: (training / "notes.txt").write_text("notes"),
}


@pytest.mark.parametrize("stray", STRAYS.values(), ids=STRAYS.keys())
def test_stray_entries_under_training_are_ignored_and_left_alone(spec, uninterrupted, run_copy, stray):
    training = run_copy / "training"
    shutil.rmtree(training / "4")
    stray(training)
    before = sorted(p.name for p in training.iterdir() if not p.name.isdigit() or not (p / "meta").exists())
    answer = resume(spec, run_copy)
    assert answer.status == EXIT_OK, answer.err
    assert "checkpoint" not in answer.err
    assert numbers(run_copy) == numbers(uninterrupted)
    assert sorted(p.name for p in training.iterdir() if not p.name.isdigit() or not (p / "meta").exists()) == before


# --- run folders are untrusted -------------------------------------------------------------------


@pytest.mark.parametrize("part", ["metrics.json", "history.csv", "curves.png"])
def test_a_linked_file_in_a_run_folder_is_refused_and_its_target_untouched(spec, run_copy, tmp_path, part):
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (run_copy / part).unlink()
    (run_copy / part).symlink_to(target)
    assert_refused(resume(spec, run_copy), f"`{run_copy / part}` is a symbolic link")
    assert target.read_text() == "precious"


def test_a_linked_training_folder_is_refused_and_nothing_outside_is_deleted(spec, run_copy, tmp_path):
    outside = Path(shutil.copytree(run_copy / "training", tmp_path / "elsewhere"))
    for step in ("1", "2"):  # steps Orbax would delete as old ones
        shutil.copytree(outside / "3", outside / step)
    shutil.rmtree(run_copy / "training")
    (run_copy / "training").symlink_to(outside)
    assert_refused(resume(spec, run_copy), "is a symbolic link")
    assert sorted(p.name for p in outside.iterdir() if p.name.isdigit()) == ["1", "2", "3", "4"]


def test_a_linked_step_is_refused_and_its_target_untouched(spec, run_copy, tmp_path):
    outside = Path(shutil.copytree(run_copy / "training" / "3", tmp_path / "elsewhere"))
    shutil.rmtree(run_copy / "training" / "3")
    (run_copy / "training" / "3").symlink_to(outside)
    assert_refused(resume(spec, run_copy), "is a symbolic link")
    assert (outside / "meta").is_dir() and (outside / "state").is_dir()


def test_a_linked_checkpoint_is_never_deleted_through(spec, uninterrupted, tmp_path):
    """`Program.save` onto a folder whose checkpoint/ is a link: refused, the target kept."""
    from dlc.api import load_run
    from dlc.runtime.runfolder import RunFolderError

    program = load_run(uninterrupted)
    outside = Path(shutil.copytree(uninterrupted / "checkpoint", tmp_path / "elsewhere"))
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "checkpoint").symlink_to(outside)
    with pytest.raises(RunFolderError, match="is a symbolic link"):
        program.save(tmp_path / "saved")
    assert sorted(p.name for p in outside.iterdir()) == sorted(p.name for p in (uninterrupted / "checkpoint").iterdir())


# --- what dlc reads back from a run folder --------------------------------------------------------


def edit_preprocessing(run: Path, **fields) -> None:
    path = run / "preprocessing.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | fields))


TAMPERED = {
    "labels that are not numbers": {"labels": [math.nan, *range(1, 10)]},
    "labels named twice": {"labels": [0, 0, *range(2, 10)]},
    "a normalization without its shift": {"normalization": {"kind": "standard", "scale": [1.0] * 64}},
    "a normalization of fewer features": {"normalization": {"kind": "standard", "shift": [0.0], "scale": [1.0]}},
}


@pytest.mark.parametrize("fields", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_tampered_preprocessing_record_is_one_line_never_nan_predictions(run_copy, tmp_path, fields):
    edit_preprocessing(run_copy, **fields)
    examples = tmp_path / "x.npz"
    np.savez(examples, x=np.ones((2, 64)))
    for answer in (dlc("eval", str(run_copy)), dlc("predict", str(run_copy), str(examples))):
        assert_refused(answer, "preprocessing.json")


@pytest.mark.parametrize("linked", ["folder", "lock"])
def test_a_linked_checkpoint_folder_or_lock_file_is_refused_before_anything_is_written(tmp_path, linked):
    """`fit(checkpoint_dir=...)` takes its lock inside the folder: a linked folder, or a `.lock`
    planted as a link, would have it write outside; refused before the lock or Orbax touch anything."""
    import dlc as api
    from dlc.runtime.runfolder import RunFolderError

    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "checkpoints"
    if linked == "folder":
        folder.symlink_to(outside)
    else:
        folder.mkdir()
        (folder / ".lock").symlink_to(outside / "victim")
    program = api.compile("dense 2 softmax\nloss categorical_crossentropy\noptimizer sgd\nepochs 1\n")
    x, y = np.zeros((8, 3), np.float32), np.arange(8) % 2
    with pytest.raises(RunFolderError, match="is a symbolic link: dlc never writes or deletes through one"):
        program.fit(x, y, checkpoint_dir=folder)
    assert list(outside.iterdir()) == []
