"""Sweeps: the members of a group as one vmapped program (`dlc.runtime.sweep.train_members`) against
the same members trained one after another through the ordinary path (`make_trainer`,
`init_state`, `loop.fit`, as `Session.fit` does), in one process.

The model is specs/mlp.dl's (digits, two dense 64 with dropout 0.5, adam), without early stopping
so that every member trains every epoch; the members are a grid of learning rates by seeds (8 and
32 members). The data is prepared once (`Session.prepare`, as a fit does). The caches start empty
(a fresh DLC_CACHE_DIR). Each way is run `--reps` times, alternately (vmapped, one by one,
vmapped, ...): the first round compiles ("cold"; one by one compiles its first member, and the
others find the program in XLA's cache, as the same spec run again would), the rounds after it find
everything in the caches ("warm", medians):

- member-epochs per second over the whole call (compiling included);
- member-epochs per second in the steady state: the members over the median epoch time of epochs
  2.. (one by one: each member's median, summed);
- the time to the first finished epoch (of any member; cold and warm) and until every member has
  finished one (warm).

    .venv/bin/python bench/sweep.py [--epochs E] [--reps R] [--members 8 32]

Then the same sweep through the command line, each way as real processes (`python -m dlc.cli run
... -q`, after one warm-up run that fills the caches): the sweep spec (lists) as one `dlc run`,
which also writes a run folder per member (and says how many vmapped programs it trained: the members
split by their own seeds, each on its own split, are one); every member's written-out spec as its own `dlc run`,
one after another; and one member's `dlc run` alone, the unit of issue 13's goal (an 8-member sweep
in at most ~3x its wall time). `--process-reps` rounds of each, medians.

Nothing here passes or fails: it prints Markdown tables to paste into bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["DLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="dlc-bench-sweep-")  # before dlc sets up XLA's cache

import dlc
from dlc.runtime.loop import fit
from dlc.runtime.options import FitOptions
from dlc.runtime.session import Session
from dlc.runtime.sweep import train_members
from dlc.runtime.train import init_state, make_trainer

SPEC = (Path(__file__).parent.parent / "specs" / "mlp.dl").read_text().replace("early_stop 5\n", "")
RATES = (1e-3, 2e-3, 5e-3, 1e-2)


def members_of(program, count: int) -> list:
    """`count` members: the learning rates by seeds 0, 1, ..."""
    seeds = range(count // len(RATES))
    return [dataclasses.replace(program, seed=seed, optimizer=dataclasses.replace(
        program.optimizer, args={**program.optimizer.args, "lr": lr})) for lr in RATES for seed in seeds]


class Clock:
    """The time of each member's every epoch, from the start of the call."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seen: dict[int, list[float]] = {}

    def mark(self, member: int) -> None:
        self.seen.setdefault(member, []).append(time.perf_counter() - self.start)

    def steady(self) -> float:
        """Seconds per epoch of the members' epochs 2.., summed over the members that ran apart."""
        gaps = {m: statistics.median(b - a for a, b in zip(t[1:], t[2:], strict=False)) for m, t in self.seen.items()}
        return sum(gaps.values())


def vmapped(members, train, val) -> tuple[float, Clock]:
    clock = Clock()
    train_members(members, train, val, FitOptions(on_epoch=lambda epoch, logs: clock.mark(logs["member"])))
    wall = time.perf_counter() - clock.start
    clock.seen = {0: clock.seen[0]}  # one program: every member's epoch ends at once
    return wall, clock


def one_by_one(members, train, val) -> tuple[float, Clock]:
    clock = Clock()
    for i, program in enumerate(members):
        trainer = make_trainer(program, len(train[0]), program.epochs)
        state = init_state(trainer, program.input_shape, program.seed)
        fit(trainer, state, train, val, FitOptions(on_epoch=lambda epoch, logs, i=i: clock.mark(i)))
    return time.perf_counter() - clock.start, clock


def sweep_spec(count: int) -> str:
    """specs/mlp.dl's model as a sweep of `count` members: the learning rates by seeds 0, 1, ..."""
    seeds = ", ".join(str(s) for s in range(count // len(RATES)))
    rates = ", ".join(f"{r:g}" for r in RATES)
    return SPEC.replace("optimizer adam lr=1e-3", f"optimizer adam lr=[{rates}]").replace("seed 0", f"seed [{seeds}]")


def dlc_run(spec: Path, out: Path, epochs: int) -> float:
    """The wall time of `dlc run SPEC` as its own process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "run", str(spec), "--out", str(out), "-q", "--epochs",
                           str(epochs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"dlc run {spec} failed:\n{done.stderr}")
    return time.perf_counter() - start


def processes(counts: list[int], epochs: int, reps: int) -> None:
    """The command-line ways (see the module's docstring)."""
    work = Path(tempfile.mkdtemp(prefix="dlc-bench-sweep-runs-"))
    runs = iter(range(10 ** 6))
    print(f"\nload average before the processes: {os.getloadavg()[0]:.2f}; {epochs} epochs, {reps} rounds\n")
    print("| members | way | wall (s) | member-epochs/s | wall / one member's `dlc run` |")
    print("|---|---|---|---|---|")
    for count in counts:
        text = sweep_spec(count)
        (work / f"sweep{count}.dl").write_text(text)
        members = []
        for i, member in enumerate(dlc.compile(text).ir.sweep.members):
            members.append(work / f"sweep{count}-member{i}.dl")
            members[-1].write_text(member.source)
        if count == counts[0]:
            dlc_run(members[0], work / f"run{next(runs)}", epochs)  # warm-up: the caches filled
        walls: dict[str, list[float]] = {"one member": [], "sweep": [], "each member": []}
        for _ in range(reps):
            walls["one member"].append(dlc_run(members[0], work / f"run{next(runs)}", epochs))
            out = work / f"run{next(runs)}"
            walls["sweep"].append(dlc_run(work / f"sweep{count}.dl", out, epochs))
            groups = len(list((out / "training").glob("group-*")))  # one checkpoint folder per vmapped program
            walls["each member"].append(sum(dlc_run(m, work / f"run{next(runs)}", epochs) for m in members))
        one = statistics.median(walls["one member"])
        for way, label, trained in (("one member", "one member's `dlc run`", 1),
                                    ("sweep", f"`dlc run` of the sweep, one process ({groups} vmapped program{'s' * (groups != 1)})", count),
                                    ("each member", "a `dlc run` per member, one after another", count)):
            wall = statistics.median(walls[way])
            print(f"| {count} | {label} | {wall:.2f} | {trained * epochs / wall:.0f} | {wall / one:.2f}x |")
        ratio = statistics.median(walls["each member"]) / statistics.median(walls["sweep"])
        print(f"| {count} | sweep / a run per member, throughput | | **{ratio:.2f}x** | |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--members", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--process-reps", type=int, default=1)
    parser.add_argument("--no-in-process", action="store_true", help="only the command-line ways")
    args = parser.parse_args()
    if not args.no_in_process:
        in_process(args)
    processes(args.members, args.epochs, args.process_reps)


def in_process(args: argparse.Namespace) -> None:
    """The in-process ways (see the module's docstring)."""
    checked, prepared, _ = Session.prepare(dlc.compile(SPEC, base_dir=Path(__file__).parent.parent), None, None,
                                           None, FitOptions())
    train, val = (prepared.train.x, prepared.train.y), (prepared.val.x, prepared.val.y)
    program = dataclasses.replace(checked, epochs=args.epochs)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {len(train[0])} training examples, "
          f"{args.epochs} epochs, {args.reps} repetitions\n")
    print("| members | way | member-epochs/s, whole call | member-epochs/s, steady | first epoch, cold (s) | "
          "first epoch, warm (s) | every member's first epoch, warm (s) | wall, warm (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for count in args.members:
        members = members_of(program, count)
        runs = {"vmapped": [], "one by one": []}
        for _ in range(args.reps):
            runs["vmapped"].append(vmapped(members, train, val))
            runs["one by one"].append(one_by_one(members, train, val))
        figures = {}
        for way, results in runs.items():
            cold, warm = results[0], results[1:] or results
            wall = statistics.median(w for w, _ in warm)
            steady = statistics.median(c.steady() for _, c in warm)
            first_cold = min(t[0] for t in cold[1].seen.values())
            first = statistics.median(min(t[0] for t in c.seen.values()) for _, c in warm)
            every = statistics.median(max(t[0] for t in c.seen.values()) for _, c in warm)
            figures[way] = (count * args.epochs / wall, count / steady)
            print(f"| {count} | {way} | {figures[way][0]:.0f} | {figures[way][1]:.0f} | {first_cold:.2f} | "
                  f"{first:.2f} | {every:.2f} | {wall:.2f} |")
        ratio = [a / b for a, b in zip(figures["vmapped"], figures["one by one"], strict=True)]
        print(f"| {count} | vmapped / one by one | **{ratio[0]:.2f}x** | **{ratio[1]:.2f}x** | | | | |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
