"""Start-up of `dlc run`: seconds from the end of the imports to the first finished epoch, in fresh
processes, with empty caches (cold) and with the caches the cold run left (warm); and the whole
process of `dlc run specs/mlp.dl` against the standalone Flax/Optax program `dlc compile --emit py`
writes of the same spec (the hand-written reference of the whole process: same model, data, split,
epochs and early stopping).

    .venv/bin/python bench/startup.py [--repeat N] [--specs specs/mlp.dl specs/cnn.dl]

The child process imports what `dlc run` imports before it trains (the CLI, JAX, the runtime: what
`--profile` calls "imports"), then runs `dlc run SPEC --epochs 2 -q` in process and notes the clock
when the first epoch reaches the display: so every second in between is counted, whether or not
`--profile` names it. It also prints `--profile`'s parts, to see where the time went.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(spec: str, out: str) -> None:
    """In a fresh process: the imports, then `dlc run` with a clock on the first epoch shown."""
    started = time.perf_counter()
    import dlc.cli
    from dlc.runtime import progress, runfolder, session  # noqa: F401  (what `dlc run` imports for training)

    imported = time.perf_counter()
    seen: dict[str, float] = {}
    shown = progress.EpochProgress.__call__

    def first_epoch_shown(self, epoch, logs):
        seen.setdefault("first_epoch", time.perf_counter())
        shown(self, epoch, logs)

    progress.EpochProgress.__call__ = first_epoch_shown
    captured: dict = {}
    print_run = dlc.cli.print_run

    def keep_timings(run, profile, started_at):
        captured.update(run.session.result.timings)

    dlc.cli.print_run = keep_timings
    status = dlc.cli.main(["run", spec, "--out", out, "-q", "--epochs", "2"])
    dlc.cli.print_run = print_run
    assert status == 0, status
    print(json.dumps({"imports": imported - started, "first_epoch": seen["first_epoch"] - imported,
                      "parts": {k: v for k, v in captured.items() if isinstance(v, float)}}))


def fresh(spec: str, cache: Path, scratch: Path) -> dict:
    out = tempfile.mkdtemp(dir=scratch)
    os.rmdir(out)  # `dlc run --out` makes the folder itself
    env = {**os.environ, "DLC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, __file__, "--child", spec, out], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"child failed on {spec}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def startup(spec: str, repeat: int, scratch: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    for i in range(repeat):
        cache = scratch / f"cache-{Path(spec).stem}-{i}"
        runs["cold"].append(fresh(spec, cache, scratch))
        runs["warm"].append(fresh(spec, cache, scratch))
    return runs


def whole_process(repeat: int, scratch: Path) -> dict[str, list[float]]:
    """`dlc run specs/mlp.dl` (cold and warm caches) and the emitted program, in turn."""
    python = sys.executable
    dlc_cmd = [python, "-m", "dlc.cli"]  # this checkout's dlc (the working directory is the root)
    emitted = scratch / "mlp_emitted.py"
    subprocess.run([*dlc_cmd, "compile", "specs/mlp.dl", "--emit", "py", "-o", str(emitted)], check=True, cwd=ROOT)
    times: dict[str, list[float]] = {"dlc run, empty caches": [], "dlc run, caches filled": [],
                                     "emitted Flax/Optax program": []}
    for i in range(repeat):
        env = {**os.environ, "DLC_CACHE_DIR": str(scratch / f"whole-{i}")}
        for label in ("dlc run, empty caches", "dlc run, caches filled"):
            times[label].append(wall([*dlc_cmd, "run", "specs/mlp.dl", "-q", "--out",
                                      str(scratch / f"run-{i}-{len(times[label])}-{label[8:13]}")], env))
        times["emitted Flax/Optax program"].append(wall([python, str(emitted), "--out", str(scratch / f"emit-{i}")],
                                                        dict(os.environ)))
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--specs", nargs="+", default=["specs/mlp.dl", "specs/cnn.dl"])
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-process comparison")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; median of {args.repeat} fresh processes\n")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        print("| spec | cache | imports (s) | first epoch after the imports (s) | min (s) | --profile's parts (median s) |")
        print("|---|---|---|---|---|---|")
        for spec in args.specs:
            for kind, runs in startup(spec, args.repeat, scratch).items():
                parts = {k: median([r["parts"].get(k, 0.0) for r in runs]) for k in runs[0]["parts"]}
                shown = ", ".join(f"{k} {v:.2f}" for k, v in parts.items() if k != "compile_cached")
                firsts = [r["first_epoch"] for r in runs]
                print(f"| {spec} | {kind} | {median([r['imports'] for r in runs]):.2f} | {median(firsts):.2f} | "
                      f"{min(firsts):.2f} | {shown} |", flush=True)
        if not args.no_whole:
            print("\n| whole process, specs/mlp.dl | median (s) | min (s) |\n|---|---|---|")
            for label, times in whole_process(args.repeat, scratch).items():
                print(f"| {label} | {median(times):.2f} | {min(times):.2f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
