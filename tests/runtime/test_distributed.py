"""`dlc run --distributed`: two CPU processes on this machine, joined through JAX's own runtime
(`jax.distributed`, gloo collectives on localhost), train as one program over the devices of both,
as they would over two hosts: the same history as one process (1e-5), one run folder (process 0's),
nothing left of the other's scratch folder, and process 0's refusals stop both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dlc
from tests.runtime.processes import numbers

SPEC = """\
data digits val=0.1 test=0.2 normalize=minmax
input 64
layer dense 16 relu
dropout 0.2
layer dense 10 softmax
loss categorical_crossentropy
optimizer adam lr={lr}
batch 64
epochs {epochs}
early_stop 2
metrics accuracy
seed 3
"""

TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _environment(tmp_path: Path) -> dict:
    """One CPU device per process, scratch folders under the test's own temporary folder."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    return {**env, "JAX_PLATFORMS": "cpu", "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}


def _start(tmp_path: Path, *args: str, processes: int = 2, only: dict[int, dict] | None = None,
           spec_of: dict[int, str] | None = None) -> list[subprocess.Popen]:
    """`dlc run ARGS --distributed` as `processes` processes; `only`: more variables of some;
    `spec_of`: another spec (the first argument) for some."""
    port = _free_port()
    return [subprocess.Popen([sys.executable, "-m", "dlc.cli", "run", (spec_of or {}).get(index, args[0]), *args[1:],
                              "--distributed", "--devices", "all"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**_environment(tmp_path), "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                                  "JAX_NUM_PROCESSES": str(processes), "JAX_PROCESS_ID": str(index),
                                  **(only or {}).get(index, {})})
            for index in range(processes)]


def _finish(started: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    try:
        ended = [p.communicate(timeout=TIMEOUT) for p in started]
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(started, ended, strict=True)]


def _close(written: list[dict], alone: list[dict]) -> None:
    """A history.csv of the distributed run, and the history of the same spec trained in this
    process (`fit`, as `dlc run` trains it): the same epochs and numbers within 1e-5."""
    assert [int(row["epoch"]) for row in written] == list(range(1, len(alone) + 1))
    for x, y in zip(written, alone, strict=True):
        assert set(x) == set(y) - {"epoch_time"}
        for key, value in y.items():
            if key != "epoch_time":
                assert float(x[key]) == pytest.approx(value, abs=1e-5), (x["epoch"], key)


def test_two_processes_train_as_one_process(tmp_path):
    (tmp_path / "mlp.dl").write_text(SPEC.format(lr="3e-3", epochs=3))
    ended = _finish(_start(tmp_path, "mlp.dl", "--out", "both", "--repeat-check"))
    for code, out, err in ended:
        assert code == 0, err
        assert "run folder: both" in out  # process 1 names process 0's
        assert "repeat check: a second run gave the identical history (3 epochs) and parameters" in out
    _close(numbers(tmp_path / "both"), dlc.compile(SPEC.format(lr="3e-3", epochs=3)).fit())
    assert (tmp_path / "both" / "checkpoint").is_dir() and (tmp_path / "both" / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["both", "mlp.dl", "scratch"]
    assert list((tmp_path / "scratch").iterdir()) == []  # process 1's scratch folder is gone


def test_a_sweep_shares_its_members_between_the_processes(tmp_path):
    (tmp_path / "sweep.dl").write_text(SPEC.format(lr="[1e-3, 3e-2]", epochs=4))
    ended = _finish(_start(tmp_path, "sweep.dl", "--out", "both"))
    for code, _, err in ended:
        assert code == 0, err
    alone = dlc.compile(SPEC.format(lr="[1e-3, 3e-2]", epochs=4)).fit()
    for member, history in zip(("lr=1e-3", "lr=3e-2"), alone, strict=True):
        _close(numbers(tmp_path / "both" / member), history)
    assert (tmp_path / "both" / "sweep.csv").read_text().splitlines()[0].startswith("lr,")
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_refusal_of_process_0_stops_every_process(tmp_path):
    (tmp_path / "mlp.dl").write_text(SPEC.format(lr="3e-3", epochs=2))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("the user's")
    (first, _, first_err), (second, _, second_err) = _finish(_start(tmp_path, "mlp.dl", "--out", "taken"))
    assert first == 2 and "already exists and is not empty" in first_err
    assert second == 2 and "process 0 could not start the run: taken already exists" in second_err  # as process 0
    assert "Traceback" not in first_err + second_err
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("spec", ["mlp", "sweep"])
def test_a_process_that_cannot_start_stops_every_process_at_once(tmp_path, spec):
    """Here process 1's memory settings are wrong; as a data file missing on one host would be."""
    (tmp_path / f"{spec}.dl").write_text(SPEC.format(lr="3e-3" if spec == "mlp" else "[1e-3, 3e-2]", epochs=2))
    ended = _finish(_start(tmp_path, f"{spec}.dl", "--out", "both", only={1: {"DLC_DATA_BUDGET": "lots"}}))
    (first, _, first_err), (second, _, second_err) = ended
    assert (first, second) == (1, 1)
    assert first_err.splitlines()[-1] == ("dlc: error: process 1 of the distributed run stopped: DLC_DATA_BUDGET "
                                          "must be a number of bytes, got 'lots'")
    assert second_err.splitlines()[-1] == "dlc: error: DLC_DATA_BUDGET must be a number of bytes, got 'lots'"
    assert not (tmp_path / "both").exists()  # training never started: the folder process 0 made is gone


@pytest.mark.parametrize(("spec", "said"), [
    (SPEC.format(lr="3e-3", epochs=1).replace("batch 64", "batch 63"),
     "`batch 63` does not split evenly over 2 devices; use a multiple of 2"),
    (SPEC.format(lr="[1e-3, 3e-3, 1e-2]", epochs=1), "a group of 3 sweep members does not split evenly over 2 devices"),
])
def test_the_devices_of_every_process_are_one_mesh(tmp_path, spec, said):
    """One device per process, two processes: the run's mesh has two devices (a batch, or a group of
    members, that does not split over two is refused by both)."""
    (tmp_path / "s.dl").write_text(spec)
    for code, _, err in _finish(_start(tmp_path, "s.dl", "--out", "both")):
        assert code == 1 and said in err.splitlines()[-1], err


def test_processes_that_read_different_data_are_refused(tmp_path):
    """Each process builds its devices' parts of the data from its own copy: files that differ
    between hosts, with the same shapes, would train on a mix of both without a word."""
    rng = np.random.default_rng(0)
    for host in ("a", "b"):
        (tmp_path / host).mkdir()
        np.savez(tmp_path / host / "d.npz", x=rng.normal(size=(40, 4)).astype(np.float32),
                 y=rng.integers(0, 2, size=40).astype(np.int32))
        (tmp_path / host / "s.dl").write_text('data "d.npz" val=0.2\ninput 4\ndense 1 sigmoid\n'
                                              "loss binary_crossentropy\noptimizer adam\nepochs 1\n")
    ended = _finish(_start(tmp_path, "a/s.dl", "--out", "both", spec_of={1: "b/s.dl"}))
    for code, _, err in ended:
        assert code == 1 and err.splitlines()[-1] == (
            "dlc: error: process 1 of the distributed run prepared other data or another spec than process 0: "
            "every process must read the same spec and the same data files"), err


def test_a_signal_to_one_process_stops_both_at_the_same_epoch(tmp_path):
    """SIGTERM (a scheduler's), which JAX's preemption service would otherwise take; Ctrl-C's
    SIGINT takes the same path."""
    signum, status = signal.SIGTERM, 143
    (tmp_path / "mlp.dl").write_text(SPEC.format(lr="1e-4", epochs=400).replace("early_stop 2\n", ""))
    started = _start(tmp_path, "mlp.dl", "--out", "both", "--checkpoint-interval", "0")
    deadline = time.monotonic() + TIMEOUT
    while not any(p.name.isdigit() for p in (tmp_path / "both" / "training").glob("*")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in started), "no checkpoint came"
        time.sleep(0.05)
    started[1].send_signal(signum)
    (first, _, first_err), (second, _, second_err) = _finish(started)
    assert (first, second) == (130, status), first_err + second_err  # process 0 stopped as by Ctrl-C
    for err in (first_err, second_err):  # both name process 0's folder
        assert "the run is saved. Continue it with:\n  dlc run mlp.dl --out both --resume\n" in err, err
    history = numbers(tmp_path / "both")
    assert 1 <= len(history) < 400
    steps = sorted(int(p.name) for p in (tmp_path / "both" / "training").glob("*") if p.name.isdigit())
    assert steps[-1] == len(history)  # process 0 saved the epoch both stopped at


@pytest.mark.parametrize(("variables", "said"), [
    ({"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES='two' is not a whole number"),
    ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID=2 is not below JAX_NUM_PROCESSES=2"),
    ({}, "not set: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID"),
])
def test_a_run_that_cannot_be_joined_is_one_line(tmp_path, variables, said):
    (tmp_path / "mlp.dl").write_text(SPEC.format(lr="3e-3", epochs=1))
    env = {k: v for k, v in _environment(tmp_path).items() if not k.startswith("JAX_") or k == "JAX_PLATFORMS"}
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", "mlp.dl", "--distributed", "--out", "r"],
                          cwd=tmp_path, capture_output=True, text=True, env={**env, **variables}, timeout=TIMEOUT)
    assert done.returncode == 1
    assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--resume"], "--resume does not work with --distributed yet"),
    (["--devices", "1"], "--devices 1 with --distributed: a distributed run trains on every device of every process"),
])
def test_what_a_distributed_run_cannot_do_is_refused_before_joining(tmp_path, flags, said):
    (tmp_path / "mlp.dl").write_text(SPEC.format(lr="3e-3", epochs=1))
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", "mlp.dl", "--distributed", "--out", "r", *flags],
                          cwd=tmp_path, capture_output=True, text=True, env=_environment(tmp_path), timeout=TIMEOUT)
    assert done.returncode == 2
    assert said in done.stderr and done.stderr.count("\n") == 1, done.stderr
