"""What the resume tests share: `dlc` as a real process, waiting for its checkpoints, and a run's
history without its timings."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path


def numbers(run: Path) -> list[dict]:
    """history.csv without the timings, which are the one thing allowed to differ."""
    with (run / "history.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(f)]


def dlc_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlc.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_steps(run: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the run has `count` complete checkpoint steps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [p for p in (run / "training").glob("*") if p.name.isdigit()] if (run / "training").exists() else []
        if len(steps) >= count or process.poll() is not None:
            return
        time.sleep(0.02)
    raise AssertionError("the run never checkpointed")
