"""The `dlc` command: argument parsing and rendering only; every verb is a call into the API or,
for what `run`, `eval` and `predict` do with run folders, into `dlc.runtime.commands`.

Exit status: 0 success, 1 errors in a spec (or a failed run), 2 usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from dlc.runtime.interrupts import Interrupts

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
# A larger spec file is refused unread: a spec is a page of text (10,000 layers take about 150 KB),
# and a file this size is a data file or a binary given by mistake.
MAX_SPEC_BYTES = 2**20
_STARTED = time.perf_counter()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep its message short
        self.print_usage(sys.stderr)
        print(f"dlc: error: {_one_line(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _one_line(message: str) -> str:
    """A message as one safe terminal line, whatever file name, cell or path it quotes."""
    from dlc.compiler.diagnostics import SHOWN_MESSAGE, printable

    return printable(message, SHOWN_MESSAGE)


def _usage_error(message: str) -> int:
    print(f"dlc: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def _color(choice: str, stream) -> bool:
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _spec_bytes(name: str) -> tuple[bytes, str, Path | None]:
    """(bytes, display path, folder relative data paths start at) of a spec file or `-` (stdin),
    read once: every verb passes these on and never opens the spec again. An OSError when it
    cannot be read, or is too large to be a spec."""
    import errno

    # Bytes, so that text that is not UTF-8 gets an error that points at the first bad byte.
    if name == "-":
        data, shown, base = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1), "<stdin>", None
    else:
        with open(name, "rb") as f:
            data, shown, base = f.read(MAX_SPEC_BYTES + 1), str(Path(name)), Path(name).parent
    if len(data) > MAX_SPEC_BYTES:
        raise OSError(errno.EFBIG, f"over {MAX_SPEC_BYTES // 2**20} MiB, too large to be a spec")
    return data, shown, base


def _read_spec(name: str, training: bool = False):
    """(program, diagnostics, text, display path) for a spec file or `-` (stdin); `training`
    requires what training needs (a loss and an optimizer)."""
    from dlc.compiler.check import check_bytes

    data, shown, base = _spec_bytes(name)
    program, diagnostics, text = check_bytes(data, shown, base, training=training)
    return program, diagnostics, text, shown


def _missing(specs: list[str]) -> str | None:
    """Why a spec file named on the command line cannot be read, before reading any."""
    import stat

    for name in specs:
        if name == "-":
            continue
        try:
            mode = os.stat(name).st_mode
        except (OSError, ValueError) as e:  # missing, a broken link or a loop of links, a name too long
            if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
                return f"cannot read {name}: {e.strerror or e}"
            return f"no such spec file: {name}"
        if not stat.S_ISREG(mode):
            return f"not a file: {name}"
    return None


def _print_diagnostics(diagnostics, sources: dict[str, str], fmt: str, color: str, stream=None) -> None:
    from dlc.compiler.diagnostics import render_json, render_text

    stream = stream or sys.stdout
    if fmt == "json":
        print(render_json(diagnostics), file=stream)
    elif diagnostics:
        print(render_text(diagnostics, sources, _color(color, stream)), end="", file=stream)


def cmd_check(args: argparse.Namespace) -> int:
    from dlc.compiler.diagnostics import summary_line

    problem = _missing(args.specs)
    if problem:
        return _usage_error(problem)
    everything, sources = [], {}
    for name in args.specs:
        try:
            _, diagnostics, text, shown = _read_spec(name)
        except OSError as e:
            return _usage_error(f"cannot read {name}: {e.strerror or e}")
        sources[shown] = text
        everything.extend(diagnostics)
    _print_diagnostics(everything, sources, args.format, args.color)
    failed = any(d.is_error for d in everything)
    if args.format == "text":
        if everything:
            print(summary_line(everything), file=sys.stderr)
        elif not args.quiet:
            print(f"{len(args.specs)} spec{'s' * (len(args.specs) != 1)} ok", file=sys.stderr)
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    import json

    problem = _missing([args.spec])
    if problem:
        return _usage_error(problem)
    try:
        program, diagnostics, text, shown = _read_spec(args.spec, training=args.emit in ("py", "hlo"))
    except OSError as e:
        return _usage_error(f"cannot read {args.spec}: {e.strerror or e}")
    if program is None:
        _print_diagnostics(diagnostics, {shown: text}, args.format, args.color, sys.stderr)
        return EXIT_ERRORS
    if args.emit == "ir":
        output = json.dumps(program.to_json(), indent=2) + "\n"
    elif args.emit == "py":
        if program.data is None:
            return _failure(f"{shown} has no `data` statement: the program `--emit py` writes trains on the data "
                            'a spec names; add one, e.g. `data digits` or `data "train.csv" target="label"`')
        from dlc.compiler.emit_py import emit_py

        output = emit_py(program, Path(args.output) if args.output else None)
    elif args.emit == "hlo":
        from dlc.runtime.export import stablehlo_text

        output = stablehlo_text(program)
    else:
        from dlc.compiler.summary import summary

        output = summary(program)
    if args.output:
        try:
            Path(args.output).write_text(output, encoding="utf-8")
        except OSError as e:
            return _usage_error(f"cannot write {args.output}: {e.strerror or e}")
    else:
        sys.stdout.write(output)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from dlc.compiler.codes import BY_CODE, CODES, explain, markdown

    if args.markdown:
        sys.stdout.write(markdown())
        return EXIT_OK
    if not args.code:
        for c in CODES:
            print(f"{c.code}  {c.title}")
        return EXIT_OK
    code = args.code.upper()
    if code not in BY_CODE:
        return _usage_error(f"unknown code {args.code}; `dlc explain` lists them")
    sys.stdout.write(explain(code))
    return EXIT_OK


def _failure(message: str) -> int:
    print(f"dlc: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_ERRORS


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    splits = [s for s in ("train", "val", "test") if s in metrics]
    if not splits:
        return ""
    names = list(metrics[splits[0]])
    rows = [["split", *names]] + [[s, *(f"{metrics[s][n]:.4f}" for n in names)] for s in splits]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows) + "\n"


class _warnings_shown:
    """Warnings given while a verb runs, shown as the CLI shows its own: a spec's as `dlc check`
    prints it, with its source line; any other as one `dlc: warning:` line."""

    def __init__(self, color: str) -> None:
        self.color = color

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        from dlc.api import SpecWarning

        if isinstance(message, SpecWarning):
            _print_diagnostics([message.diagnostic], message.sources, "text", self.color, sys.stderr)
        else:
            print(f"dlc: warning: {_one_line(str(message))}", file=sys.stderr)

    def __enter__(self):
        import warnings

        self.caught = warnings.catch_warnings()
        self.caught.__enter__()
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc) -> None:
        self.caught.__exit__(*exc)


_interrupts = Interrupts()


def cmd_run(args: argparse.Namespace) -> int:
    problem = _missing([args.spec])
    if problem:
        return _usage_error(problem)
    if args.epochs is not None and args.epochs < 1:
        return _usage_error("--epochs must be at least 1")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        return _usage_error("--seed must be in [0, 2^32)")
    if args.checkpoint_interval < 0:
        return _usage_error("--checkpoint-interval must be 0 or more seconds")
    if args.resume and not args.out:
        return _usage_error("--resume needs --out DIR, the folder of the run to continue")
    try:
        data, shown, base = _spec_bytes(args.spec)
    except OSError as e:
        return _usage_error(f"cannot read {args.spec}: {e.strerror or e}")
    from dlc import arguments
    from dlc.api import SpecError
    from dlc.api import compile as compile_spec

    try:
        program = compile_spec(data, path=shown, base_dir=base)
    except SpecError as e:
        _print_diagnostics(e.diagnostics, e.sources, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    _print_diagnostics(program.diagnostics, {shown: program.source}, "text", args.color, sys.stderr)
    if program.ir.data is None:
        return _failure(f"{shown} has no `data` statement: `dlc run` trains on the data a spec names; add one, "
                        'e.g. `data digits` or `data "train.csv" target="label"` (or train on arrays with '
                        "the Python API's fit(x, y))")
    try:  # `nan` and `inf` are floats to argparse: refused as `Program.fit` refuses them
        interval = arguments.seconds("checkpoint_interval", args.checkpoint_interval)
    except ValueError as e:
        return _failure(str(e))
    from dlc.runtime import commands
    from dlc.runtime.options import FitOptions

    options = FitOptions(epochs=args.epochs, seed=args.seed, resume=args.resume, checkpoint_interval=interval,
                         should_stop=lambda: _interrupts.requested, devices=args.devices)
    request = commands.RunRequest(args.spec, Path(args.out) if args.out else None, options, args.deterministic,
                                  args.distributed)
    try:
        result = commands.run(program, request, _RunShown(args, program.ir))
        _print_run(result, args.profile)
        if args.repeat_check:
            print(commands.repeat_check(program, result.session))
    except SpecError as e:
        _print_diagnostics(e.diagnostics, e.sources, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    except commands.RunRefused as e:
        return _usage_error(str(e))
    except commands.RunInterrupted as e:
        print(f"dlc: {e}", file=sys.stderr)
        return _interrupts.status
    except (ValueError, commands.RunFailed) as e:  # SpecError is a ValueError
        return _failure(str(e))
    return EXIT_OK


class _RunShown:
    """`dlc run` on the terminal as the runtime runs it: a resume that starts over, the command a
    second signal prints, and while training, the progress, the notice of a stop and warnings."""

    def __init__(self, args: argparse.Namespace, program) -> None:
        self.args, self.program = args, program

    def claimed(self, folder) -> None:
        if folder.notice:
            print(f"dlc: {folder.notice}", file=sys.stderr)
        _interrupts.abort_line = f"dlc: aborted; continue from the last checkpoint with: {folder.resume_command}"

    @contextlib.contextmanager
    def training(self):
        from dlc.runtime.progress import EpochProgress

        progress = EpochProgress(self.args.epochs or self.program.epochs, self.program.name, quiet=self.args.quiet)
        _interrupts.notice = "\ndlc: stopping after this epoch (Ctrl-C again to abort)"
        try:
            with _warnings_shown(self.args.color):
                yield progress, progress.compiled
        finally:
            progress.close()
            _interrupts.notice = ""


def _print_run(run, profile: bool) -> None:
    """How a finished run ended, its metrics and its folder (and where the start-up time went)."""
    session, metrics, result = run.session, run.metrics, run.session.result
    how = f"stopped early after {metrics['epochs_run']} epochs" if metrics["stopped_early"] \
        else f"{metrics['epochs_run']} epochs"
    best = f", weights of epoch {result.best_epoch}" if session.program.early_stop and \
        session.program.early_stop.restore_best else ""
    print(f"{session.program.name}: {how}{best}, {result.wall_time:.1f} s")
    print(_metrics_table(metrics), end="")
    print(f"run folder: {run.folder}")
    if profile:
        print(_profile(run.imports, result))


def _profile(imports: float, result) -> str:
    """Where the time to the first finished epoch went."""
    t = result.timings
    parts = [("imports", imports), ("data", t.get("data")), ("init", t.get("init")), ("trace", t.get("trace")),
             ("compile", t.get("compile")), ("first epoch", t.get("first_epoch"))]
    shown = [(name, v) for name, v in parts if v is not None]
    cache = ""
    if "compile_cached" in t:
        cache = " (from the compilation cache)" if t["compile_cached"] else " (compiled; cached for the next run)"
    total = time.perf_counter() - _STARTED
    epochs = [row["epoch_time"] for row in result.history[1:]]
    steady = f"; later epochs {1000 * sorted(epochs)[len(epochs) // 2]:.1f} ms (median)" if epochs else ""
    first = sum(v for _, v in shown)
    return (f"start-up: {', '.join(f'{n} {v:.2f} s' for n, v in shown)}{cache}\n"
            f"first epoch finished {first - imports:.2f} s after the imports ({first:.2f} s with them)"
            f"{steady}; {total:.2f} s in all")


def _trained(run_dir: str):
    """The trained session of a run folder; when its spec has errors, they are shown as `dlc check`
    shows them, then why in one line."""
    from dlc.api import SpecError, load_run
    from dlc.runtime.commands import unloadable

    try:
        return load_run(run_dir).trained
    except SpecError as e:
        print(e, file=sys.stderr)
        raise unloadable(run_dir, e.diagnostics) from None


def _reload_errors() -> tuple[type[Exception], ...]:
    """What using a reloaded run may raise, each one line for the user (a SpecError is a ValueError)."""
    from dlc.runtime import commands

    return (ValueError, commands.RunFailed, *commands.runtime_errors())


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from dlc.runtime import commands

    try:
        metrics = commands.evaluate(_trained(args.run_dir), args.run_dir, args.data, args.target)
    except _reload_errors() as e:
        return _failure(str(e))
    if args.format == "json":
        print(json.dumps(metrics, indent=2))
    else:
        print(_metrics_table(metrics) if not args.data else json.dumps(metrics, indent=2))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    from dlc.runtime import commands

    try:
        rows = commands.predict(_trained(args.run_dir), args.input, args.target)
    except _reload_errors() as e:
        return _failure(str(e))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    if args.output:
        try:
            Path(args.output).write_text(buffer.getvalue(), encoding="utf-8")
        except OSError as e:
            return _usage_error(f"cannot write {args.output}: {e.strerror or e}")
    else:
        sys.stdout.write(buffer.getvalue())
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from dlc.runtime.export import prediction_artifact, python_folder
    from dlc.runtime.runlock import write_atomically

    out = Path(args.output)
    try:
        session = _trained(args.run_dir)
        if args.format == "stablehlo":
            write_atomically(out, prediction_artifact(session))
            print(f"wrote {out}: prediction from raw features, normalization and weights inside "
                  f"(load it with jax.export.deserialize)")
        else:
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                return _usage_error(f"{out} already exists and is not an empty folder; choose another -o")
            python_folder(session, out)
            print(f"wrote {out}/: model.py, weights.npz, preprocessing.json, predict.py "
                  f"(python {out / 'predict.py'} FILE)")
    except _reload_errors() as e:
        return _failure(str(e))
    except OSError as e:
        return _failure(f"cannot write {args.output}: {e.strerror or e}")
    return EXIT_OK


def _devices(text: str) -> int | str:
    if text == "all":
        return text
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of devices or `all`, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("the number of devices must be at least 1")
    return count


def build_parser() -> argparse.ArgumentParser:
    from dlc.version import __version__

    parser = _Parser(prog="dlc", description="Check, compile and train declarative deep-learning specs (.dl).")
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("check", help="check specs and print every error")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (`-` reads standard input)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing for valid specs")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("compile", help="check a spec, then show or emit the model")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--emit", choices=("summary", "ir", "py", "hlo"), default="summary",
                   help="summary: layers, shapes, parameters and settings; ir: the checked program as JSON; "
                        "py: a standalone Flax/Optax program that trains it; hlo: the StableHLO of prediction "
                        "and of one training epoch")
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of standard output")
    p.add_argument("--format", choices=("text", "json"), default="text", help="how errors are printed")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", help="check, train and evaluate a spec; write a run folder")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/NAME-TIMESTAMP)")
    p.add_argument("--epochs", type=int, metavar="N", help="train for N epochs instead of the spec's")
    p.add_argument("--seed", type=int, metavar="N", help="seed instead of the spec's")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out DIR exactly where it stopped")
    p.add_argument("--checkpoint-interval", type=float, default=2.0, metavar="SECONDS",
                   help="checkpoint after an epoch at most this often (default 2; 0: every epoch)")
    p.add_argument("--distributed", action="store_true",
                   help="join a multi-host run first (jax.distributed.initialize; see docs/scaling.md)")
    p.add_argument("--devices", type=_devices, metavar="N|all",
                   help="shard each batch over N devices (or all), parameters replicated")
    p.add_argument("--profile", action="store_true",
                   help="print where the start-up time went: imports, data, init, trace, compile, first epoch")
    p.add_argument("--repeat-check", action="store_true",
                   help="train a second time with the same seed and check every number is identical")
    p.add_argument("--deterministic", action="store_true",
                   help="ask XLA for deterministic GPU kernels (slower); CPU runs are deterministic already")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate a trained run on its data splits or on a data file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", nargs="?", metavar="DATA", help="a .csv or .npz file with labels")
    p.add_argument("--target", help="label column of a CSV (default: the spec's `target=`)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="predict with a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("input", metavar="INPUT", help="a .csv or .npz file of examples")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write predictions here instead of standard output")
    p.add_argument("--target", help="a CSV column to leave out of the features (default: the spec's `target=`)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained run for use without dlc")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("stablehlo", "py"), default="stablehlo",
                   help="stablehlo: a serialized jax.export artifact of prediction from raw features; "
                        "py: a folder of the model's code, weights.npz, preprocessing.json and predict.py")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file (stablehlo) or folder (py) to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("explain", help="explain a diagnostic code, with a failing and a fixed example")
    p.add_argument("code", nargs="?", metavar="CODE")
    p.add_argument("--markdown", action="store_true", help="print every explanation as docs/errors.md")
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Called as the program (no argv), signals stay dlc's to the end, so that a Ctrl-C once the
    # command is done cannot raise KeyboardInterrupt inside JAX's teardown; called with arguments
    # (from Python), the caller gets its handlers back.
    _interrupts.keep_installed = argv is None
    with _interrupts:  # first, before any import a Ctrl-C could break into
        try:
            args = build_parser().parse_args(argv)
            # Only `run` has work to save at a safe point; any other verb just stops.
            _interrupts.graceful = args.func is cmd_run
            status = EXIT_OK if _interrupts.requested else args.func(args)
        except BrokenPipeError:
            return EXIT_OK
        except Exception as e:  # a bug in dlc, never the user's input: still one line, unless asked for more
            if os.environ.get("DLC_TRACEBACK"):
                raise
            return _failure(f"internal error: {type(e).__name__}: {e} (a bug in dlc: please report it; "
                            "DLC_TRACEBACK=1 shows where it happened)")
        if _interrupts.requested and status == EXIT_OK:  # it came after the last safe point, or before the first
            print("dlc: interrupted", file=sys.stderr)
            return _interrupts.status
        return status


if __name__ == "__main__":
    sys.exit(main())
