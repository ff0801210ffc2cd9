"""The memory guard: its limit readers (cgroup v2 and v1, rlimits, RAM), the parts of its
estimate, its one-line refusal, and a real `dlc run` refused under an address-space limit."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import dlc
from dlc.runtime import memory

GIB = 2 ** 30
MIB = 2 ** 20


@pytest.fixture
def fake_system(tmp_path, monkeypatch):
    """A made-up /sys/fs/cgroup and /proc/self: returns a function writing files under them."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    proc.mkdir()
    (proc / "status").write_text("VmRSS:\t  204800 kB\nVmHWM:\t  409600 kB\nVmSize:\t 1048576 kB\nVmData:\t  524288 kB\n")
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "PROC_SELF", proc)

    def write(relative: str, text: str, under: Path = root) -> None:
        path = under / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return SimpleNamespace(write=write, proc=proc)


def test_cgroup_v2_limits_are_read_at_every_level_less_what_is_in_use(fake_system):
    fake_system.write("cgroup", "0::/jobs/job1\n", fake_system.proc)
    fake_system.write("jobs/job1/memory.max", "max\n")  # no limit of its own
    fake_system.write("jobs/job1/memory.current", "1000\n")
    fake_system.write("jobs/memory.max", f"{4 * GIB}\n")  # the parent's limit binds the child
    fake_system.write("jobs/memory.current", f"{GIB}\n")
    [limit] = memory.cgroup_limits()
    assert (limit.total, limit.free, limit.source) == (4 * GIB, 3 * GIB, "the cgroup's memory.max")
    assert limit.describe() == "the cgroup's memory.max of 4.0 GiB"


def test_cgroup_v1_limit_is_read_and_its_no_limit_number_ignored(fake_system):
    fake_system.write("cgroup", "5:cpu,cpuacct:/a\n4:memory:/a\n", fake_system.proc)
    fake_system.write("memory/a/memory.limit_in_bytes", f"{2 * GIB}\n")
    fake_system.write("memory/a/memory.usage_in_bytes", f"{GIB // 2}\n")
    fake_system.write("memory/memory.limit_in_bytes", "9223372036854771712\n")  # v1's "unlimited"
    [limit] = memory.cgroup_limits()
    assert (limit.total, limit.free, limit.source) == (2 * GIB, 3 * GIB // 2, "the cgroup's memory.limit_in_bytes")


def test_no_cgroup_file_means_no_cgroup_limit(fake_system):
    assert memory.cgroup_limits() == []


def test_rlimits_count_against_the_address_space_and_data_in_use(fake_system, monkeypatch):
    limits = {resource.RLIMIT_AS: 3 * GIB, resource.RLIMIT_DATA: resource.RLIM_INFINITY}
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (limits[which], resource.RLIM_INFINITY))
    [limit] = memory.rlimits()  # VmSize is 1 GiB in the fake status
    assert (limit.total, limit.free, limit.address_space) == (3 * GIB, 2 * GIB, True)
    assert limit.source.startswith("RLIMIT_AS")


def test_the_tightest_limit_applies(monkeypatch):
    monkeypatch.setattr(memory, "device_limit", lambda: None)
    monkeypatch.setattr(memory, "free_ram", lambda: memory.Limit(20 * GIB, None, "the available RAM"))
    monkeypatch.setattr(memory, "cgroup_limits", lambda: [memory.Limit(3 * GIB, 4 * GIB, "the cgroup's memory.max")])
    monkeypatch.setattr(memory, "rlimits", lambda: [])
    assert memory.available() == (3 * GIB, "the cgroup's memory.max of 4.0 GiB")
    monkeypatch.setattr(memory, "cgroup_limits", lambda: [])
    assert memory.available() == (20 * GIB, "the available RAM")


def _prepared(n_train: int, n_val: int, features: int):
    def split(n):
        return SimpleNamespace(x=np.zeros((n, features), np.float32), y=np.zeros(n, np.int32)) if n else None

    return SimpleNamespace(train=split(n_train), val=split(n_val), test=None)


SPEC = "input 100\ndense 1000 relu\ndense 10 softmax\nloss categorical_crossentropy\noptimizer adam\nbatch 50\n"


def test_the_estimate_counts_every_copy_of_the_state_and_the_data():
    from dlc.runtime.train import EVAL_CHUNK

    assert memory.EVAL_CHUNK == EVAL_CHUNK  # kept apart so that importing the guard imports no JAX
    program = dlc.compile(SPEC + "early_stop 3\n").ir
    params = 100 * 1000 + 1000 + 1000 * 10 + 10
    parts = memory.parts(program, _prepared(10_000, 1_000, 100))
    # parameters and 2 Adam slots, twice (a step's input and output), gradients, updates, the best copy
    assert parts["parameters, gradients and optimizer state"] == params * 4 * (2 * 3 + 2 + 1)
    assert parts["checkpoint copies on the host"] == 2 * params * 4 * (1 + 2 + 1)
    row = 100 * 4 + 4
    # the training split, the validation split padded to whole chunks of 1024, two chunks more
    assert parts["data on the device"] == 10_000 * row + 1024 * row + 2 * 1024 * row
    per_example = 100 + 1000 + 10
    assert parts["activations kept for the backward pass"] == 4 * per_example * 50 * 4
    assert parts["runtime (XLA compiler, threads, checkpointer, plots)"] == memory.RUNTIME
    no_best = memory.parts(dlc.compile(SPEC).ir, _prepared(10_000, 1_000, 100))
    assert no_best["parameters, gradients and optimizer state"] == params * 4 * (2 * 3 + 2)


def test_streaming_lowers_the_data_part_only_down_to_the_final_metrics():
    program = dlc.compile(SPEC).ir
    row = 100 * 4 + 4
    whole = memory.parts(program, _prepared(10_240, 0, 100))["data on the device"]
    streamed = memory.parts(program, _prepared(10_240, 0, 100), data_budget=1000 * row)["data on the device"]
    assert whole == streamed == 10_240 * row + 2 * 1024 * row  # the final metrics hold the whole split


def test_the_peak_is_what_is_held_plus_what_is_to_come_or_the_high_water_mark(fake_system):
    program = dlc.compile(SPEC).ir
    need = memory.estimate(program, _prepared(100, 0, 100))
    assert (need.in_use, need.high_water) == (200 * MIB, 400 * MIB)
    assert need.peak == max(400 * MIB, 200 * MIB + need.more) == 200 * MIB + need.more


def test_a_refusal_is_one_line_with_the_estimate_the_limit_its_source_and_the_largest_part(monkeypatch):
    monkeypatch.setattr(memory, "device_limit", lambda: None)
    monkeypatch.setattr(memory, "host_limits", lambda: [memory.Limit(100 * MIB, 4 * GIB, "the cgroup's memory.max")])
    program = dlc.compile("input 100\ndense 8000 relu\ndense 8000 relu\ndense 10 softmax\nloss categorical_crossentropy\n").ir
    with pytest.raises(memory.MemoryGuardError) as caught:
        memory.guard_memory(program, _prepared(1000, 0, 100))
    message = str(caught.value)
    assert "\n" not in message
    assert "needs about" in message and "the cgroup's memory.max of 4.0 GiB leaves 100.0 MiB" in message
    assert "largest part: parameters, gradients and optimizer state" in message
    monkeypatch.setattr(memory, "host_limits", lambda: [memory.Limit(3 * GIB, 4 * GIB, "the cgroup's memory.max")])
    memory.guard_memory(program, _prepared(1000, 0, 100))  # with 3 GiB free it fits


BIG = """model big
data digits val=0.1 test=0.2
input 64
dense 8000 relu; dense 8000 relu; dense 10 softmax
loss categorical_crossentropy; optimizer adam lr=1e-3; epochs 1
"""


def test_dlc_run_under_an_address_space_limit_is_refused_in_time_with_one_line(tmp_path):
    """64.6M parameters with Adam need about 3 GiB more; under `ulimit -v 3G` the guard says so
    before training allocates them."""
    spec = tmp_path / "big.dl"
    spec.write_text(BIG)
    limit = 3 * GIB

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", str(spec), "--out", str(tmp_path / "run"), "-q"],
                          preexec_fn=limit_address_space, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DLC_CACHE_DIR": str(tmp_path / "xla")})
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dlc: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "RLIMIT_AS (ulimit -v) of 3.0 GiB" in errors[0] and "largest part: parameters" in errors[0]
    assert not (tmp_path / "run").exists()
