"""Scale: several devices give the history of one; data larger than the device budget is
streamed through the same step and trains as if it were on the device; the start-up profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import dlc
from dlc.cli import main

SPEC = """\
data digits val=0.1 test=0.2 normalize=standard shuffle={shuffle}
input 64
dense 32 relu
dropout 0.2
batchnorm
dense 10 softmax
loss categorical_crossentropy
optimizer adam lr=1e-3
batch 32
epochs 3
metrics accuracy
"""

FOUR_DEVICES = f"""
import json, dlc
spec = {SPEC.format(shuffle="true")!r}
histories = []
for devices in (1, 4):
    program = dlc.compile(spec)
    program.fit(devices=devices)
    histories.append([{{k: v for k, v in row.items() if k != "epoch_time"}} for row in program.trained.history])
print(json.dumps(histories))
"""


def test_four_devices_give_the_history_of_one():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run([sys.executable, "-c", FOUR_DEVICES], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    one, four = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(one) == len(four) == 3
    for a, b in zip(one, four):
        assert a.keys() == b.keys()
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-5, (key, a[key], b[key])


def test_data_over_the_device_budget_is_streamed_and_trains_the_same():
    on_device, streamed = dlc.compile(SPEC.format(shuffle="false")), dlc.compile(SPEC.format(shuffle="false"))
    on_device.fit()
    streamed.fit(data_budget=20_000)  # about 70 examples: the epoch goes through in chunks of 64
    for a, b in zip(on_device.trained.history, streamed.trained.history):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert abs(a[key] - b[key]) <= 1e-5, (key, a[key], b[key])
    x = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    assert np.allclose(on_device.predict(x), streamed.predict(x), atol=1e-5)


def test_more_devices_than_there_are_is_a_clear_error(tmp_path, capsys):
    spec = tmp_path / "s.dl"
    spec.write_text(SPEC.format(shuffle="true"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q", "--devices", "64"]) == 1
    err = capsys.readouterr().err
    assert "asked for 64 devices" in err and "Traceback" not in err


def test_profile_breaks_the_start_up_down(tmp_path, capsys):
    spec = tmp_path / "s.dl"
    spec.write_text(SPEC.format(shuffle="true"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q", "--epochs", "2", "--profile"]) == 0
    out = capsys.readouterr().out
    for part in ("imports", "data", "init", "trace", "compile", "first epoch"):
        assert part in out.split("start-up:")[1]
