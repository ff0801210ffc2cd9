"""The memory guard's estimate against the real peak memory of `dlc run`.

For each model (digits MLP, specs/cnn.dl, a wide MLP on a generated 20,000x784 set, a deep one of
30 dense layers, and large-data cases of 150,000x784 float64 and float32), a fresh process runs
`dlc run` through `dlc.cli.main`, with the guard wrapped so that it also writes down its
estimate; the process's peak resident memory is its own `VmHWM` (`ru_maxrss` would inherit the
parent's at exec), so it counts everything the run held: the interpreter, JAX, XLA's compiler, the data, training, the
checkpoints and the run folder's plots.

    .venv/bin/python bench/memory.py [--epochs E] [--only NAME ...]

Nothing here passes or fails: it prints a Markdown table to paste into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: record the guard's estimate, then run `dlc run` as the command line does.
CHILD = r"""
import json, sys
import dlc.runtime.memory as memory
import dlc.runtime.session as session

def recording_guard(program, prepared, data_budget=None):
    need = memory.estimate(program, prepared, data_budget)
    address_space = max(memory._status_kib("VmPeak"),  # loading the data may have reserved more already
                        memory._status_kib("VmSize") + need.more + memory.RESERVED_ADDRESS_SPACE)
    with open(sys.argv[1], "w") as f:
        json.dump({"parts": need.parts, "peak": need.peak, "address_space": address_space}, f)
    return memory.guard_memory(program, prepared, data_budget)

session.guard_memory = recording_guard
from dlc.cli import main
code = main(["run", *sys.argv[2:]])
with open(sys.argv[1] + ".peak", "w") as f:  # this process's own high-water mark, not one inherited at exec
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    json.dump({k: int(status[k].split()[0]) * 1024 for k in ("VmHWM", "VmPeak")}, f)
sys.exit(code)
"""

WIDE = """model wide
data "wide.npz" val=0.1 test=0.1 normalize=standard
input 784
dense 4096 relu; dense 4096 relu; dense 10 softmax
loss categorical_crossentropy; optimizer adam lr=1e-4; batch 128; early_stop 3
"""

DEEP = """model deep
data digits val=0.1 test=0.2 normalize=standard
input 64
repeat 30 { dense 256 relu }
dense 10 softmax
loss categorical_crossentropy; optimizer adam lr=1e-4; batch 64; early_stop 3
"""

LARGE = """model large_{dtype}
data "large_{dtype}.npz" val=0.1 test=0.1 normalize=standard
input 784
dense 128 relu; dense 10 softmax
loss categorical_crossentropy; optimizer adam lr=1e-3; batch 256; early_stop 3
"""


def make_data(folder: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 784)).astype(np.float32)
    np.savez(folder / "wide.npz", x=x, y=rng.integers(0, 10, 20_000))
    for dtype in ("float64", "float32"):
        x = rng.normal(size=(150_000, 784)).astype(dtype)
        np.savez(folder / f"large_{dtype}.npz", x=x, y=rng.integers(0, 10, 150_000))


def cases(folder: Path) -> dict[str, Path]:
    (folder / "wide.dl").write_text(WIDE)
    (folder / "deep.dl").write_text(DEEP)
    for dtype in ("float64", "float32"):
        (folder / f"large_{dtype}.dl").write_text(LARGE.format(dtype=dtype))
    return {"mlp (digits)": ROOT / "specs/mlp.dl", "cnn (specs/cnn.dl)": ROOT / "specs/cnn.dl",
            "wide (2x dense 4096, 20k x 784)": folder / "wide.dl", "deep (30x dense 256)": folder / "deep.dl",
            "large data (150k x 784 float64)": folder / "large_float64.dl",
            "large data (150k x 784 float32)": folder / "large_float32.dl"}


def measure(spec: Path, folder: Path, epochs: int) -> tuple[dict, dict, int]:
    """(the guard's estimate, the child's peaks in bytes (VmHWM, VmPeak), its exit status)."""
    record = folder / f"{spec.stem}.json"
    env = {**os.environ, "DLC_CACHE_DIR": str(folder / "xla")}
    child = subprocess.run([sys.executable, "-c", CHILD, str(record), str(spec), "--out", str(folder / spec.stem),
                            "-q", "--epochs", str(epochs)], env=env, stdout=subprocess.DEVNULL)
    estimate = json.loads(record.read_text()) if record.exists() else {}
    peak = Path(f"{record}.peak")
    return estimate, json.loads(peak.read_text()) if peak.exists() else {}, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="run only the cases whose name starts with one of these")
    parser.add_argument("--make-data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_data:
        return make_data(args.make_data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # in a process of its own: this one stays small, so nothing it holds is counted in a child
        subprocess.run([sys.executable, __file__, "--make-data", str(folder)], check=True)
        print("| model | estimate (MiB) | peak RSS (MiB) | estimate / peak | largest part (MiB) "
              "| address space: estimate / VmPeak | exit |")
        print("|---|---|---|---|---|---|---|")
        for name, spec in cases(folder).items():
            if args.only and not any(name.startswith(prefix) for prefix in args.only):
                continue
            estimate, peaks, code = measure(spec, folder, args.epochs)
            if not estimate or not peaks:
                print(f"| {name} | - | - | - | - | - | {code} |", flush=True)
                continue
            parts, mib = estimate["parts"], 2 ** 20
            largest = max(parts, key=parts.get)
            print(f"| {name} | {estimate['peak'] / mib:,.0f} | {peaks['VmHWM'] / mib:,.0f} | "
                  f"{estimate['peak'] / peaks['VmHWM']:.2f} | {largest} ({parts[largest] / mib:,.0f}) | "
                  f"{estimate['address_space'] / peaks['VmPeak']:.2f} | {code} |", flush=True)


if __name__ == "__main__":
    main()
