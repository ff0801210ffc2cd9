"""The `dlc` command: each verb reads its arguments (grammar in `command_line.py`), calls the API
or, for what `run`, `eval` and `predict` do with run folders, `dlc.runtime.commands`, and shows
the answer (`terminal.py`); here is only which call, and which exit status for which failure.

Exit status: 0 success, 1 errors in a spec (or a failed run), 2 usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from dlc.command_line import EXIT_USAGE, build_parser
from dlc.runtime.interrupts import Interrupts
from dlc.terminal import WarningsShown, metrics_table, one_line, print_diagnostics, print_run, print_sweep, report_table

EXIT_OK, EXIT_ERRORS = 0, 1  # EXIT_USAGE (2) is argparse's, in command_line.py
# A larger spec file is refused unread: a spec is a page of text (10,000 layers take about 150 KB),
# and a file this size is a data file or a binary given by mistake.
MAX_SPEC_BYTES = 2**20
_STARTED = time.perf_counter()


def _usage_error(message: str) -> int:
    print(f"dlc: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


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
    print_diagnostics(everything, sources, args.format, args.color)
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
        print_diagnostics(diagnostics, {shown: text}, args.format, args.color, sys.stderr)
        return EXIT_ERRORS
    if args.emit in ("py", "hlo"):
        from dlc.runtime.commands import sweep_refusal

        if refusal := sweep_refusal(program, f"`--emit {args.emit}` writes one program, not a sweep"):
            return _failure(refusal)
    if args.emit == "ir":
        output = json.dumps(program.to_json(), indent=2) + "\n"
    elif args.emit == "py":
        if program.data is None:
            return _failure(f"{shown} has no `data` statement: the program `--emit py` writes trains on the data "
                            'a spec names; add one, e.g. `data digits` or `data "train.csv" target="label"`')
        if program.init is not None:
            return _failure(f"{shown} starts from a trained run (`init`), whose weights the program `--emit py` "
                            "writes cannot load without dlc; train it with `dlc run`, then `dlc export RUN --format "
                            "py` writes the trained model for use without dlc")
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
    print(f"dlc: error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERRORS


_interrupts = Interrupts()


def cmd_run(args: argparse.Namespace) -> int:
    status = _run(args)
    if args.distributed and status != EXIT_OK:
        _leave_distributed_run(status)
    return status


def _leave_distributed_run(status: int) -> None:
    """A process of a distributed run that stops on its own (an error the others may not share)
    leaves at once: at exit JAX would wait, up to 5 minutes, for the others at its shutdown
    barrier, while they wait for it at their next collective step. Its coordinator then stops
    them once it misses this process (its heartbeat timeout)."""
    from dlc.runtime.distributed import processes

    if processes() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _run(args: argparse.Namespace) -> int:
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
        print_diagnostics(e.diagnostics, e.sources, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    print_diagnostics(program.diagnostics, {shown: program.source}, "text", args.color, sys.stderr)
    if program.ir.data is None:
        return _failure(f"{shown} has no `data` statement: `dlc run` trains on the data a spec names; add one, "
                        'e.g. `data digits` or `data "train.csv" target="label"` (or train on arrays with '
                        "the Python API's fit(x, y))")
    from dlc.runtime import commands
    try:  # `nan` and `inf` are floats to argparse: refused as `Program.fit` refuses them
        interval = arguments.seconds("checkpoint_interval", args.checkpoint_interval)
    except ValueError as e:
        return _failure(str(e))
    from dlc.runtime.options import FitOptions

    options = FitOptions(epochs=args.epochs, seed=args.seed, resume=args.resume, checkpoint_interval=interval,
                         should_stop=lambda: _interrupts.requested, devices=args.devices)
    request = commands.RunRequest(args.spec, Path(args.out) if args.out else None, options, args.deterministic,
                                  args.distributed, args.tensorboard)
    try:
        if program.ir.sweep is not None:
            return _run_sweep(program, request, _RunShown(args, program.ir))
        result = commands.run(program, request, _RunShown(args, program.ir))
        print_run(result, args.profile, _STARTED)
        if args.repeat_check:
            print(commands.repeat_check(program, result.session, result.devices))
    except SpecError as e:
        print_diagnostics(e.diagnostics, e.sources, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    except commands.RunRefused as e:
        return _usage_error(str(e))
    except commands.RunInterrupted as e:
        print(f"dlc: {e}", file=sys.stderr)
        return _interrupts.status
    except (ValueError, commands.RunFailed) as e:  # SpecError is a ValueError
        return _failure(str(e))
    return EXIT_OK


def _run_sweep(program, request, shown: _RunShown) -> int:
    """`dlc run` of a sweep: the API trains the members (together, vmapped, checkpointed), the
    runtime writes their folders; exit 0 if at least one member trained. A diverged member is a
    warning, shown as one line."""
    from dlc.runtime import commands
    from dlc.runtime.options import FitOptions
    from dlc.runtime.sweeprun import run_sweep

    def train(options):
        histories = program.fit(epochs=options.epochs, seed=options.seed, should_stop=options.should_stop,
                                on_epoch=options.on_epoch, on_compiled=options.on_compiled,
                                checkpoint_dir=options.checkpoint_dir, resume=options.resume,
                                checkpoint_interval=options.checkpoint_interval, devices=options.devices, reset=True)
        trained = [(member.trained, history) for member, history in zip(program.members, histories, strict=True)]
        return dict(zip(program.ir.sweep.labels, trained, strict=True))

    first: dict = {}  # each member's (session, history), kept for --repeat-check

    def train_first(options):
        first.update(train(options))
        return list(first.values())

    sweep = run_sweep(program.ir, request, train_first, shown)
    print_sweep(sweep)
    if shown.args.repeat_check:
        again = train(FitOptions(epochs=request.options.epochs, seed=request.options.seed,
                                 devices=request.options.devices))
        print(commands.same_again(first, again))
    return EXIT_OK if sweep.trained else _failure(f"every member of the sweep diverged; see {sweep.folder}")


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
        from dlc.runtime.progress import EpochProgress, SweepProgress

        epochs, sweep, rule = self.args.epochs or self.program.epochs, self.program.sweep, self.program.early_stop
        progress = EpochProgress(epochs, self.program.name, quiet=self.args.quiet) if sweep is None else \
            SweepProgress(epochs, self.program.name, list(sweep.labels), rule.monitor if rule else None,
                          rule.mode if rule else "min", quiet=self.args.quiet)
        _interrupts.notice = "\ndlc: stopping after this epoch (Ctrl-C again to abort)"
        try:
            with WarningsShown(self.args.color):
                yield progress, progress.compiled
        finally:
            progress.close()
            _interrupts.notice = ""


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
        with WarningsShown("auto"):  # a category the training split lacked, rows dropped
            found = commands.evaluate(_trained(args.run_dir), args.run_dir, args.data, args.target, args.report)
    except _reload_errors() as e:
        return _failure(str(e))
    if args.format == "json":  # with --report, the metrics and the report side by side
        print(json.dumps(found.metrics if found.report is None else {"metrics": found.metrics, "report": found.report},
                         indent=2))
    else:
        print(metrics_table(found.metrics) + (f"\n{report_table(found.report)}" if found.report else ""), end="")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    from dlc.runtime import commands

    try:
        with WarningsShown("auto"):  # a category the training split lacked
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


def _handlers() -> dict:
    """Each verb's function, looked up when the command runs."""
    return {"check": cmd_check, "compile": cmd_compile, "run": cmd_run, "eval": cmd_eval, "predict": cmd_predict,
            "export": cmd_export, "explain": cmd_explain}


def main(argv: list[str] | None = None) -> int:
    # Called as the program (no argv), signals stay dlc's to the end, so that a Ctrl-C once the
    # command is done cannot raise KeyboardInterrupt inside JAX's teardown; called with arguments
    # (from Python), the caller gets its handlers back.
    _interrupts.keep_installed = argv is None
    with _interrupts:  # first, before any import a Ctrl-C could break into
        try:
            args = build_parser(_handlers()).parse_args(argv)
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
