"""Ctrl-C at any moment of `dlc run`, and one writer per run folder. These drive real `dlc run`
processes: a signal's effect depends on where the process is (an import, XLA, a write), which
only a real process shows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import dlc
from dlc.cli import main
from dlc.runtime.runlock import LOCK_NAME, claim_new_folder

SPEC = """\
model sig
data digits val=0.2 test=0.2 normalize=standard
dense 16 relu
dense 10 softmax
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 64
epochs 12
metrics accuracy
"""


class Run:
    """A `dlc run` process whose stdout lines are timestamped as they come."""

    def __init__(self, *args: str, cwd: Path | None = None):
        self.process = subprocess.Popen([sys.executable, "-m", "dlc.cli", "run", *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.finished_at: float | None = None  # when it printed `run folder:`, its last line
        self.stdout: list[str] = []
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line)
            if line.startswith("run folder:"):
                self.finished_at = time.monotonic()

    def signal(self, signum: int) -> float:
        sent = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return sent

    def wait(self) -> tuple[int, str]:
        err = self.process.stderr.read()
        self.process.wait(timeout=120)
        self.reader.join()
        return self.process.returncode, err


def interpreter_start() -> float:
    """How long Python takes here and now to start and import `dlc.cli`, whose `main` installs
    dlc's signal handling first thing: a signal before then is Python's to handle. On a loaded
    machine this is well past 0.1 s."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import dlc.cli"], check=True)
    return time.monotonic() - started


def wait_until(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the run ended (or took too long) before the moment the test waits for")
        time.sleep(0.01)


def steps(run: Path) -> list[str]:
    training = run / "training"
    return [p.name for p in training.iterdir() if p.name.isdigit()] if training.exists() else []


def no_traceback(err: str) -> bool:
    return "Traceback" not in err and "Exception ignored" not in err


def before_dlc_main(err: str) -> bool:
    """Whether a KeyboardInterrupt struck before `dlc.cli.main` ran, i.e. in the interpreter's start
    or an import, where no program can handle it yet: no frame of its traceback is `main`."""
    return err.rstrip().endswith("KeyboardInterrupt") and ", in main\n" not in err


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "sig.dl"
    path.write_text(SPEC)
    return path


def test_sigint_at_random_moments_exits_130_without_tracebacks_and_leaves_a_resumable_folder(spec, tmp_path,
                                                                                             capsys):
    """Signals from once dlc's handler can be installed (at least 0.1 s) to past the end: imports,
    data, compile, training, final evaluation and writes. The interpreter's own start-up and the
    import of `dlc.cli` are out of reach: an early signal that a loaded machine still delivers there
    is Python's KeyboardInterrupt, allowed only then, and it must leave no folder behind."""
    rng = random.Random(9)
    floor = max(0.1, 1.5 * interpreter_start())
    delays = [rng.uniform(floor, floor + 4.4) for _ in range(12)]
    outcomes = []
    for pair in range(0, len(delays), 2):  # two at a time, to keep to a minute on two cores
        runs = [(tmp_path / f"r{i}", Run(str(spec), "--out", str(tmp_path / f"r{i}"), "-q",
                                         "--checkpoint-interval", "0"), delays[i]) for i in (pair, pair + 1)]
        started = time.monotonic()
        sent = {}
        for folder, run, delay in sorted(runs, key=lambda r: r[2]):
            time.sleep(max(0.0, started + delay - time.monotonic()))
            sent[folder] = run.signal(signal.SIGINT)
        for folder, run, delay in runs:
            status, err = run.wait()
            outcomes.append((folder, delay, status, err, run.finished_at is not None and
                             run.finished_at < sent[folder]))
    for folder, delay, status, err, finished_first in outcomes:
        where = f"SIGINT after {delay:.2f} s: exit {status}, stderr {err[-300:]!r}"
        if delay < 1.0 and before_dlc_main(err):  # a loaded machine took longer than measured to get there
            assert not folder.exists(), where
            continue
        assert no_traceback(err), where
        assert status == 130 or (status == 0 and finished_first), where  # never swallowed
        if status == 130:
            assert err.rstrip().splitlines()[-1].startswith(("dlc: interrupted", "  dlc run ")), where
        if folder.exists() and not (folder / "metrics.json").exists():
            assert main(["run", str(spec), "--out", str(folder), "-q", "--resume"]) == 0, \
                f"{where}; resuming: {capsys.readouterr().err[-300:]!r}"
            assert (folder / "metrics.json").exists(), where


def test_a_second_sigint_aborts_at_once_and_the_run_still_resumes(spec, tmp_path, capsys):
    folder = tmp_path / "double"
    run = Run(str(spec), "--out", str(folder), "-q", "--checkpoint-interval", "0")
    wait_until(lambda: len(steps(folder)) >= 1, run.process)
    run.signal(signal.SIGINT)
    time.sleep(0.05)
    run.signal(signal.SIGINT)
    status, err = run.wait()
    assert status == 130 and no_traceback(err), err
    assert err.rstrip().splitlines()[-1].startswith(("dlc: aborted; continue from the last checkpoint with: dlc run",
                                                     "  dlc run ")), err  # or the first stop won the race
    assert main(["run", str(spec), "--out", str(folder), "-q", "--resume"]) == 0, capsys.readouterr().err
    assert (folder / "metrics.json").exists()


def test_two_runs_into_one_folder_started_together_one_trains_the_other_is_refused(spec, tmp_path):
    folder = tmp_path / "shared"
    runs = [Run(str(spec), "--out", str(folder), "-q", "--epochs", "3") for _ in range(2)]
    results = [run.wait() for run in runs]
    assert sorted(status for status, _ in results) == [0, 2], results
    winner, loser = (runs[0], runs[1]) if results[0][0] == 0 else (runs[1], runs[0])
    err = results[runs.index(loser)][1]
    assert f"is in use by process {winner.process.pid}" in err and no_traceback(err), err
    assert len(err.strip().splitlines()) == 1, err
    # The lock file is no part of the run for whatever reads the folder.
    assert dlc.load_run(folder).evaluate() is not None


def test_a_resume_into_a_run_still_training_is_refused_naming_it(spec, tmp_path, capsys):
    folder = tmp_path / "live"
    run = Run(str(spec), "--out", str(folder), "-q", "--checkpoint-interval", "0", "--epochs", "200")
    wait_until(lambda: len(steps(folder)) >= 1, run.process)
    assert main(["run", str(spec), "--out", str(folder), "-q", "--resume", "--epochs", "200"]) == 2
    err = capsys.readouterr().err
    assert f"is in use by process {run.process.pid}" in err and no_traceback(err), err
    run.signal(signal.SIGINT)
    assert run.wait()[0] == 130


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(spec, tmp_path, capsys):
    folder = tmp_path / "early"
    run = Run(str(spec), "--out", str(folder), "-q", "--epochs", "3")
    wait_until(lambda: (folder / "spec.dl").exists(), run.process)
    run.signal(signal.SIGKILL)
    run.wait()
    assert not steps(folder)
    assert main(["run", str(spec), "--out", str(folder), "-q", "--epochs", "3"]) == 2
    assert "--resume trains it from the start" in capsys.readouterr().err
    assert main(["run", str(spec), "--out", str(folder), "-q", "--epochs", "3", "--resume"]) == 0
    assert "training it from the start" in capsys.readouterr().err
    assert (folder / "metrics.json").exists()


def test_two_fits_sharing_a_checkpoint_dir_one_is_refused(tmp_path):
    """The same lock guards the API: a second fit into a checkpoint folder in use (here by a
    thread of the same process) raises RunLockedError before touching it."""
    spec = "input 4\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\nepochs 3\n"
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = np.arange(64) % 3
    training, tried = threading.Event(), threading.Event()

    def hold(epoch, logs):
        training.set()
        tried.wait(60)

    first = threading.Thread(target=lambda: dlc.compile(spec).fit(x, y, checkpoint_dir=tmp_path / "ck",
                                                                  on_epoch=hold))
    first.start()
    assert training.wait(60)
    try:
        with pytest.raises(dlc.RunLockedError, match="is in use by this process"):
            dlc.compile(spec).fit(x, y, checkpoint_dir=tmp_path / "ck")
    finally:
        tried.set()
        first.join()
    assert dlc.compile(spec).fit(x, y, checkpoint_dir=tmp_path / "ck", resume=True)  # free again once it ended


def test_runs_started_in_the_same_second_get_their_own_default_folders(tmp_path):
    base = tmp_path / "runs" / "sig-20260101-000000"
    claimed: list[Path] = []
    threads = [threading.Thread(target=lambda: claimed.append(claim_new_folder(base))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in claimed) == sorted([base.name] + [f"{base.name}-{n}" for n in range(2, 9)])
    assert not list(base.glob(LOCK_NAME))  # claiming makes the folder; the lock is the run's to take
