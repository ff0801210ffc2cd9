"""A long fuzz run, by hand, not in CI: `.venv/bin/python scripts/fuzz.py --minutes 5`.

Feeds dlc what `tests/reliability/test_fuzz.py` feeds it for a few seconds (mutated shipped specs
and specs from the grammar, through the front end, the API and `dlc check`; see
`tests/reliability/fuzzing.py`), batch after batch with fresh random draws until the time is up.
Prints how many examples ran and, for each crash, its input (shrunk by hypothesis) and the error.
Exits 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS / "reliability"), str(TESTS / "properties")]

from fuzzing import answer, grammar_specs, shipped_mutations  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

# (name, strategy, examples per batch): three batches of mutations to one of grammar specs, which
# are slower to draw.
FEEDS = (("mutated shipped specs", shipped_mutations(), 300), ("grammar specs", grammar_specs(), 100))


def batch(name: str, strategy, size: int, deadline: float, scratch: Path, counts: dict[str, int]) -> str | None:
    """Up to `size` examples of one feed, fresh random draws; a report of the crash, if one happened."""
    failing: list[tuple[bytes, Path]] = []

    @settings(max_examples=size, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(case=strategy)
    def one(case: tuple[bytes, Path]) -> None:
        if time.monotonic() > deadline:
            return
        counts[name] += 1
        try:
            answer(*case, scratch)
        except BaseException:
            failing.append(case)  # the last one is the shrunk example hypothesis reports
            raise

    try:
        one()
    except Exception as e:
        data, folder = failing[-1]
        error = "".join(traceback.format_exception_only(type(e), e)).strip()
        print(f"crash in {name}: {error.splitlines()[0]}", file=sys.stderr, flush=True)
        return f"{name}: {error}\n  input ({folder}): {data!r}\n" + "".join(traceback.format_tb(e.__traceback__)[-3:])
    return None


def fuzz(minutes: float, scratch: Path) -> tuple[dict[str, int], list[str]]:
    """Batches until `minutes` are up. Returns the examples run per feed and a report per crash."""
    deadline = time.monotonic() + 60 * minutes
    counts = {name: 0 for name, _, _ in FEEDS}
    crashes: list[str] = []
    for number in itertools.count():
        if time.monotonic() >= deadline:
            break
        name, strategy, size = FEEDS[1] if number % 4 == 3 else FEEDS[0]
        report = batch(name, strategy, size, deadline, scratch, counts)
        if report:
            crashes.append(report)
    return counts, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to fuzz (default 5)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        counts, crashes = fuzz(args.minutes, Path(scratch))
    took = (time.monotonic() - started) / 60
    total = sum(counts.values())
    print(f"{total} examples in {took:.1f} min: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    print(f"crashes: {len(crashes)}")
    for report in crashes:
        print(report)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
