"""What the `dlc` command prints: diagnostics as `dlc check` shows them, metrics tables, how a run
ended and where its start-up time went, warnings, and any message as one safe terminal line.
Rendering only: nothing here decides what a command does.
"""

from __future__ import annotations

import os
import sys
import time


def one_line(message: str) -> str:
    """A message as one safe terminal line, whatever file name, cell or path it quotes."""
    from dlc.compiler.diagnostics import SHOWN_MESSAGE, printable

    return printable(message, SHOWN_MESSAGE)


def use_color(choice: str, stream) -> bool:
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_diagnostics(diagnostics, sources: dict[str, str], fmt: str, color: str, stream=None) -> None:
    from dlc.compiler.diagnostics import render_json, render_text

    stream = stream or sys.stdout
    if fmt == "json":
        print(render_json(diagnostics), file=stream)
    elif diagnostics:
        print(render_text(diagnostics, sources, use_color(color, stream)), end="", file=stream)


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    splits = [s for s in ("train", "val", "test") if s in metrics]
    if not splits:
        return ""
    names = list(metrics[splits[0]])
    rows = [["split", *names]] + [[s, *(f"{metrics[s][n]:.4f}" for n in names)] for s in splits]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows) + "\n"


class WarningsShown:
    """Warnings given while a verb runs, shown as the CLI shows its own: a spec's as `dlc check`
    prints it, with its source line; any other as one `dlc: warning:` line."""

    def __init__(self, color: str) -> None:
        self.color = color

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        from dlc.api import SpecWarning

        if isinstance(message, SpecWarning):
            print_diagnostics([message.diagnostic], message.sources, "text", self.color, sys.stderr)
        else:
            print(f"dlc: warning: {one_line(str(message))}", file=sys.stderr)

    def __enter__(self):
        import warnings

        self.caught = warnings.catch_warnings()
        self.caught.__enter__()
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc) -> None:
        self.caught.__exit__(*exc)


def print_run(run, profile: bool, started: float) -> None:
    """How a finished run ended, its metrics and its folder (and where the start-up time went)."""
    session, metrics, result = run.session, run.metrics, run.session.result
    how = f"stopped early after {metrics['epochs_run']} epochs" if metrics["stopped_early"] \
        else f"{metrics['epochs_run']} epochs"
    best = f", weights of epoch {result.best_epoch}" if session.program.early_stop and \
        session.program.early_stop.restore_best else ""
    print(f"{session.program.name}: {how}{best}, {result.wall_time:.1f} s")
    print(metrics_table(metrics), end="")
    print(f"run folder: {run.folder}")
    if profile:
        print(_profile(run.imports, result, started))


def _profile(imports: float, result, started: float) -> str:
    """Where the time to the first finished epoch went."""
    t = result.timings
    parts = [("imports", imports), ("data", t.get("data")), ("init", t.get("init")), ("trace", t.get("trace")),
             ("compile", t.get("compile")), ("first epoch", t.get("first_epoch"))]
    shown = [(name, v) for name, v in parts if v is not None]
    cache = ""
    if "compile_cached" in t:
        cache = " (from the compilation cache)" if t["compile_cached"] else " (compiled; cached for the next run)"
    total = time.perf_counter() - started
    epochs = [row["epoch_time"] for row in result.history[1:]]
    steady = f"; later epochs {1000 * sorted(epochs)[len(epochs) // 2]:.1f} ms (median)" if epochs else ""
    first = sum(v for _, v in shown)
    return (f"start-up: {', '.join(f'{n} {v:.2f} s' for n, v in shown)}{cache}\n"
            f"first epoch finished {first - imports:.2f} s after the imports ({first:.2f} s with them)"
            f"{steady}; {total:.2f} s in all")
