"""How fast `dlc check` answers, measured against `import jax`.

`dlc check` is meant for editors and pre-commit hooks: it must answer before JAX could even be
imported (the target is a third of `import jax` or less) and must not import JAX, NumPy, Flax or
Optax at all. This script measures, each in fresh processes after one untimed warm-up run:
`python -c pass` (the interpreter's floor), `python -c "import jax"` and `dlc check SPEC`; it
lists the array libraries `dlc check` imported; and it times parse + check in process on
generated specs of growing size, to show the cost per statement stays flat.

The processes run as an installed tool does, with bytecode caching on (even where
PYTHONDONTWRITEBYTECODE is set); the bytecode goes to a temporary folder, never the working tree.

    .venv/bin/python bench/check_speed.py [--repeat N] [--spec specs/mlp.dl]

Exit status 1 when `dlc check` imported an array library; timings never fail the run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlc.compiler.check import check_text

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1 / 3
ARRAY_LIBRARIES = ("jax", "jaxlib", "numpy", "flax", "optax")
SIZES = (250, 500, 1000, 2000, 4000)
BROKEN_EVERY = 100  # the second series has one syntax error per this many statements
IN_PROCESS_REPEAT = 3
LAYER_CYCLE = ("dense 64 relu", "dropout 0.1", "layernorm")


def dlc_command() -> list[str]:
    """The installed `dlc` script beside this interpreter, else the CLI module."""
    script = Path(sys.executable).parent / "dlc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dlc.cli"]


def bytecode_env(cache: str) -> dict[str, str]:
    """The environment with bytecode caching on, the cache kept under `cache`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": cache}


def run_times(argv: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    """Wall-clock seconds of `repeat` fresh runs of `argv`, after one untimed warm-up run."""
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, check=True, env=env)
        if i:
            times.append(time.perf_counter() - start)
    return times


def imported_array_libraries(argv: list[str], env: dict[str, str]) -> list[str]:
    """Array libraries among the modules a run of `argv` imported (from `-X importtime`'s report)."""
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, check=True)
    modules = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", result.stderr, re.M)
    if not modules:
        raise RuntimeError("no `-X importtime` report: cannot tell what `dlc check` imported")
    return sorted({m.split(".")[0] for m in modules} & set(ARRAY_LIBRARIES))


def generated_spec(statements: int, broken_every: int = 0) -> tuple[str, int]:
    """A spec of `statements` statements (input, a cycle of layers, loss, optimizer), and how many
    of them are syntax errors when every `broken_every`-th layer is broken."""
    lines, broken = ["input 64"], 0
    while len(lines) < statements - 2:
        if broken_every and len(lines) % broken_every == 0:
            lines.append("dense 64 relu @")
            broken += 1
        else:
            lines.append(LAYER_CYCLE[len(lines) % len(LAYER_CYCLE)])
    lines += ["loss mse", "optimizer adam lr=1e-3"]
    return "\n".join(lines) + "\n", broken


def best_check_time(text: str, expected_errors: int, repeat: int) -> float:
    """The fastest of `repeat` in-process parse + check runs, after making sure the spec gets
    exactly the errors it was built with."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _, diagnostics = check_text(text, "<generated>")
        times.append(time.perf_counter() - start)
        errors = sum(d.is_error for d in diagnostics)
        if errors != expected_errors:
            raise RuntimeError(f"the generated spec got {errors} errors, expected {expected_errors}")
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per command (default 10)")
    parser.add_argument("--spec", default="specs/mlp.dl", help="the spec `dlc check` reads, relative to the repo")
    args = parser.parse_args()

    dlc_check = dlc_command() + ["check", args.spec]
    commands = {
        "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
        'python -c "import jax"': [sys.executable, "-c", "import jax"],
        f"dlc check {args.spec}": dlc_check,
    }
    print(f"fresh processes, {args.repeat} timed runs each after one warm-up run (seconds)")
    print(f"{'command':<40} {'median':>8} {'min':>8}")
    medians = {}
    with tempfile.TemporaryDirectory(prefix="dlc-bench-pycache-") as cache:
        env = bytecode_env(cache)
        for label, argv in commands.items():
            times = run_times(argv, args.repeat, env)
            medians[label] = statistics.median(times)
            print(f"{label:<40} {medians[label]:>8.3f} {min(times):>8.3f}")
        loaded = imported_array_libraries(dlc_check, env)
    floor, jax, check = medians.values()
    ratio = check / jax
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"\ndlc check / import jax (medians): {ratio:.2f}, {verdict} the target of {TARGET_RATIO:.2f}")
    print(f"the same, each above the interpreter floor: {(check - floor) / (jax - floor):.2f}")

    shown = ", ".join(loaded) if loaded else "none of " + ", ".join(ARRAY_LIBRARIES)
    print(f"\ndlc check imported: {shown}")

    check_text("input 4\ndense 1\n")  # build the parser once, as a long-lived process would have
    print(f"\nparse + check in process, best of {IN_PROCESS_REPEAT} (ms, and µs per statement)")
    print(f"{'statements':>10} {'valid':>10} {'per stmt':>9}   "
          f"{f'1 syntax error per {BROKEN_EVERY}':>24} {'per stmt':>9}")
    for size in SIZES:
        valid = best_check_time(generated_spec(size)[0], 0, IN_PROCESS_REPEAT)
        text, broken = generated_spec(size, BROKEN_EVERY)
        with_errors = best_check_time(text, broken, IN_PROCESS_REPEAT)
        print(f"{size:>10} {valid * 1e3:>10.1f} {valid / size * 1e6:>9.1f}   "
              f"{with_errors * 1e3:>24.1f} {with_errors / size * 1e6:>9.1f}")
    return 1 if loaded else 0


if __name__ == "__main__":
    sys.exit(main())
