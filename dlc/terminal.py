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


def _table(rows: list[list[str]]) -> str:
    """Rows of cells as aligned columns: the first left-aligned, the others (numbers) right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in rows) + "\n"


def metrics_table(metrics: dict) -> str:
    """A row per split (or data file) of `metrics`, a column per metric; other entries (such as
    metrics.json's `epochs_run`) are left out."""
    splits = [s for s, v in metrics.items() if isinstance(v, dict)]
    if not splits:
        return ""
    names = list(metrics[splits[0]])
    return _table([["split", *names]] + [[one_line(s), *(f"{metrics[s][n]:.4f}" for n in names)] for s in splits])


def _name(label) -> str:
    """A class label as a table shows it: one safe line, at most 24 characters."""
    return one_line(str(label))[:24]


def report_table(report: dict) -> str:
    """`dlc eval --report` on the terminal: the per-class table and the confusion matrix (true
    classes down, predicted across), or the residual statistics; then where its figure is."""
    on = one_line(report["file"]) if "file" in report else f"the {report['split']} split"
    head = f"report on {on} ({report['examples']} examples)"
    if report["kind"] == "regression":
        stats = report["residuals"]
        body = "residuals (true - predicted)\n" + _table([list(stats), [f"{v:.4g}" for v in stats.values()]])
    else:
        scores = ("precision", "recall", "f1")
        rows = [["class", *scores, "support"]]
        rows += [[_name(c["class"]), *(f"{c[s]:.4f}" for s in scores), str(c["support"])] for c in report["classes"]]
        rows.append(["accuracy", "", "", f"{report['accuracy']:.4f}", str(report["examples"])])
        for average in ("macro_avg", "weighted_avg"):
            rows.append([average.replace("_", " "), *(f"{report[average][s]:.4f}" for s in scores),
                         str(report["examples"])])
        names = [_name(c["class"]) for c in report["classes"]]
        matrix = [["true \\ predicted", *names]] + [[name, *map(str, row)]
                                                     for name, row in zip(names, report["confusion"])]
        body = _table(rows) + "\nconfusion matrix\n" + _table(matrix)
    return f"{head}\n{body}figure: {one_line(report['figure'])}\n"


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


def print_sweep(sweep) -> None:
    """A finished sweep: its members ranked by the monitor, best first (a diverged one says when),
    and where the folders and `sweep.csv` are."""
    rows = [["member", "epochs", sweep.monitor]]
    for member in sweep.members:
        if member.metrics is None:
            rows.append([one_line(member.label), str(member.diverged_at), f"diverged at epoch {member.diverged_at}"])
        else:
            score = sweep.score(member)
            rows.append([one_line(member.label), str(member.metrics["epochs_run"]),
                         "" if score is None else f"{score:.4f}"])
    print(f"{len(sweep.members)} members, {sweep.trained} trained, ranked by {sweep.monitor}:")
    print(_table(rows), end="")
    print(f"sweep folder: {sweep.folder} (a run folder per member, sweep.csv)")


def _profile(imports: float, result, started: float) -> str:
    """Where the time to the first finished epoch went."""
    t = result.timings
    parts = [("imports", imports), ("data", t.get("data")), ("setup", t.get("setup")), ("init", t.get("init")),
             ("trace", t.get("trace")),
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
