"""The `dlc` command: argument parsing and rendering only; every verb is a call into the API.

Exit status: 0 success, 1 errors in a spec (or a failed run), 2 usage errors.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

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


def _read_spec(name: str):
    """(program, diagnostics, text, display path) for a spec file or `-` (stdin)."""
    from dlc.compiler.check import check_bytes

    data, shown, base = _spec_bytes(name)
    program, diagnostics, text = check_bytes(data, shown, base)
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
        program, diagnostics, text, shown = _read_spec(args.spec)
    except OSError as e:
        return _usage_error(f"cannot read {args.spec}: {e.strerror or e}")
    if program is None:
        _print_diagnostics(diagnostics, {shown: text}, args.format, args.color, sys.stderr)
        return EXIT_ERRORS
    if args.emit == "ir":
        output = json.dumps(program.to_json(), indent=2) + "\n"
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


def _runtime_errors() -> tuple[type[Exception], ...]:
    """Errors of bad input that the runtime reports in one line (imported only when training)."""
    from dlc.runtime.devices import DeviceError
    from dlc.runtime.sources import DataError
    from dlc.runtime.storage import RunFolderError

    return DataError, RunFolderError, DeviceError


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    splits = [s for s in ("train", "val", "test") if s in metrics]
    if not splits:
        return ""
    names = list(metrics[splits[0]])
    rows = [["split", *names]] + [[s, *(f"{metrics[s][n]:.4f}" for n in names)] for s in splits]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows) + "\n"


def _discard_unstarted(out: Path, created: bool) -> None:
    """Remove a run folder this command made when training never started: it holds only the spec's
    copy, its lock (and an empty checkpoint folder), and would block running the same command again."""
    import shutil

    if created and not _has_checkpoint(out):
        shutil.rmtree(out, ignore_errors=True)


def _spec_changes(before: str, after: str) -> str:
    """The first lines that differ between two versions of a spec, for a refused resume."""
    import difflib

    old, new = before.splitlines(), after.splitlines()
    changes = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if tag != "equal":
            was = "; ".join(old[i1:i2]) or "nothing"
            now = "; ".join(new[j1:j2]) or "nothing"
            changes.append(f"line {i1 + 1}: `{was}` became `{now}`")
    return ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")


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


class _Interrupts:
    """SIGINT and SIGTERM as a request that `dlc run` answers at its safe points, never as an
    exception raised wherever Python happens to be (inside an import, or a callback of XLA's,
    where it printed tracebacks or was swallowed). The C-level handler writes each signal to a
    pipe that a thread reads, so a signal is seen at once even while the main thread is inside
    XLA: the first asks to stop (or, unless `graceful`, aborts); a second aborts at once, printing
    `abort_line`. Installed by `main` for the length of a command, before anything is imported."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.graceful = True
        self.notice = ""  # printed when the first signal asks to stop, while training
        self.abort_line = "dlc: interrupted"
        self.previous: dict | None = None
        self.keep_installed = False  # the process's own command: signals stay dlc's through its shutdown

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def status(self) -> int:
        """The shell's status for death by the signal: 130 for SIGINT, 143 for SIGTERM."""
        import signal

        return 128 + (self.signum or signal.SIGINT)

    def __enter__(self) -> _Interrupts:
        import signal
        import threading

        self.signum, self.graceful, self.notice, self.abort_line = None, True, "", "dlc: interrupted"
        if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
            return self
        read, self.write = os.pipe()
        os.set_blocking(self.write, False)
        self.previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
        self.previous_fd = signal.set_wakeup_fd(self.write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read,), name="dlc-interrupts", daemon=True).start()
        return self

    def _watch(self, read: int) -> None:
        import signal

        with os.fdopen(read, "rb", buffering=0) as pipe:
            while signals := pipe.read(16):
                for signum in signals:
                    if signum not in (signal.SIGINT, signal.SIGTERM):
                        continue
                    if self.signum is None and self.graceful:
                        self.signum = signum
                        if self.notice:
                            print(self.notice, file=sys.stderr, flush=True)
                        continue
                    self.signum = self.signum or signum
                    print(self.abort_line, file=sys.stderr, flush=True)
                    os._exit(self.status)

    def __exit__(self, *exc) -> None:
        import signal

        if self.previous is None:
            return
        if self.keep_installed:
            # The command is done: a signal while Python shuts down has nothing left to stop. (Python's
            # shutdown puts the default handler back for any handler but SIG_IGN, and a signal then
            # killed the process after it had printed its last line.)
            for signum in self.previous:
                signal.signal(signum, signal.SIG_IGN)
            return
        signal.set_wakeup_fd(self.previous_fd)
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = None
        os.close(self.write)  # the watcher reads the end of the pipe and stops


_interrupts = _Interrupts()


class _Refused(Exception):
    """A run refused before it started; its message is printed already, `status` is the exit status."""

    def __init__(self, status: int) -> None:
        self.status = status


def _has_checkpoint(out: Path) -> bool:
    """Whether a run folder holds a checkpoint step, as resuming counts them (a stray `1000` is none)."""
    from dlc.runtime.storage import is_step

    training = out / "training"
    return training.is_dir() and any(is_step(p) for p in training.iterdir())


def _check_claimable(args: argparse.Namespace, out: Path, text: str) -> None:
    """Refuse an existing folder that is not this run's to take: to resume, it must hold this spec;
    otherwise it must be empty (else it is another run's, or the user's)."""
    from dlc.runtime.identity import resume_changes, spec_sha256
    from dlc.runtime.runlock import is_unused

    if args.resume:
        try:
            started = (out / "spec.dl").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise _Refused(_failure(f"nothing to resume in `{out}`: it has no spec.dl")) from None
        # The spec is what can be told before JAX starts; its seed and epochs, from the checkpoint, after.
        if resume_changes({"spec_sha256": spec_sha256(started)}, {"spec_sha256": spec_sha256(text)}):
            raise _Refused(_failure(f"cannot resume `{out}`: the spec changed since the run started: "
                                    f"{_spec_changes(started, text)}"))
    elif is_unused(out):
        return
    elif (out / "spec.dl").is_file() and not _has_checkpoint(out):
        raise _Refused(_usage_error(f"{out} holds a run stopped before its first checkpoint: --resume "
                                    "trains it from the start (or choose another --out)"))
    else:
        raise _Refused(_usage_error(f"{out} already exists and is not empty; choose another --out "
                                    "(or --resume it)"))


def _claim_run_folder(args: argparse.Namespace, name: str, text: str):
    """(folder, whether this command made it, its lock, whether to resume from a checkpoint): the
    run folder, locked for this run. A new folder is claimed by making it (of two runs started
    together, only one can); an existing one is taken only if empty, or to resume it. A folder
    another run holds is refused at once, naming it."""
    from dlc.runtime.runlock import LOCK_NAME, RunLock, RunLockedError, claim_new_folder, write_atomically

    out, created = Path(args.out) if args.out else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", False
    try:
        if not args.out:
            out, created = claim_new_folder(out), True
        elif not args.resume:
            out.mkdir(parents=True)
            created = True
    except FileExistsError:
        pass
    except OSError as e:
        raise _Refused(_usage_error(f"cannot create the run folder {out}: {e.strerror or e}")) from None
    if not out.is_dir():
        if args.resume:
            raise _Refused(_failure(f"nothing to resume in `{out}`: it has no spec.dl"))
        raise _Refused(_usage_error(f"{out} already exists and is not a folder; choose another --out"))
    lock = RunLock(out, command=shlex.join(["dlc", "run", args.spec, "--out", str(out)]))
    if not created and not (out / LOCK_NAME).exists():
        _check_claimable(args, out, text)  # not a run's folder: refused before a lock file is left in it
    try:
        lock.acquire()
    except RunLockedError as e:
        raise _Refused(_usage_error(str(e))) from None
    except OSError as e:
        raise _Refused(_usage_error(f"cannot lock the run folder {out}: {e.strerror or e}")) from None
    try:
        if not created:
            _check_claimable(args, out, text)  # under the lock: another run may have taken it meanwhile
        if args.resume:
            if not _has_checkpoint(out):  # killed or stopped before its first checkpoint: nothing to lose
                print(f"dlc: {out} has no complete checkpoint: training it from the start", file=sys.stderr)
            return out, False, lock, _has_checkpoint(out)
        try:
            write_atomically(out / "spec.dl", text)
        except OSError as e:
            raise _Refused(_usage_error(f"cannot create the run folder {out}: {e.strerror or e}")) from None
        return out, created, lock, False
    except _Refused:
        _discard_unstarted(out, created)
        lock.release()
        raise


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
    from dlc.api import SpecError
    from dlc.api import compile as compile_spec

    try:
        api_program = compile_spec(data, path=shown, base_dir=base)
    except SpecError as e:
        _print_diagnostics(e.diagnostics, e.sources, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    text, program = api_program.source, api_program.ir
    _print_diagnostics(api_program.diagnostics, {shown: text}, "text", args.color, sys.stderr)
    if program.data is None:
        return _failure(f"{shown} has no `data` statement: `dlc run` trains on the data a spec names; add one, "
                        'e.g. `data digits` or `data "train.csv" target="label"` (or train on arrays with '
                        "the Python API's fit(x, y))")
    if _interrupts.requested:
        print("dlc: interrupted before the run started; nothing was saved", file=sys.stderr)
        return _interrupts.status
    try:
        out, created, lock, resume = _claim_run_folder(args, program.name, text)
    except _Refused as e:
        return e.status
    try:
        return _train(args, api_program, out, created, resume, data, shown, base)
    finally:
        lock.release()


def _interrupted(out: Path, resume_command: str, epoch: int | None = None) -> int:
    """The one line (and the command to continue) of a run stopped by a signal."""
    if _has_checkpoint(out):
        after = f" after epoch {epoch}" if epoch else ""
        line = f"dlc: interrupted{after}; the run is saved. Continue it with:"
    else:
        line = "dlc: interrupted before the first checkpoint. Start the run again with:"
    print(f"{line}\n  {resume_command}", file=sys.stderr)
    return _interrupts.status


def _train(args: argparse.Namespace, api_program, out: Path, created: bool, resume: bool, data: bytes,
           shown: str, base: Path | None) -> int:
    """Train into the claimed run folder `out` and write it; every signal ends in exit 130 (143)
    with the command that continues the run."""
    from dlc.api import SpecError

    text, program = api_program.source, api_program.ir
    resume_command = shlex.join(["dlc", "run", args.spec, "--out", str(out), "--resume",
                                 *(a for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None
                                   for a in (f"--{k}", str(v)))])
    _interrupts.abort_line = f"dlc: aborted; continue from the last checkpoint with: {resume_command}"

    if args.deterministic:  # read by XLA when JAX starts its backend, so set before importing it
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
        os.environ["TF_CUDNN_DETERMINISTIC"] = "1"

    imports_started = time.perf_counter()
    if args.distributed:
        import jax

        try:
            jax.distributed.initialize()  # coordinator, process count and id from the environment
        except (RuntimeError, ValueError) as e:
            return _failure(f"cannot join the distributed run: {str(e).splitlines()[0]}")
    from dlc.runtime.devices import DeviceError
    from dlc.runtime.memory import MemoryGuardError
    from dlc.runtime.progress import EpochProgress
    from dlc.runtime.runfolder import write_history, write_run
    from dlc.runtime.runlock import RunLockedError
    from dlc.runtime.session import ResumeError
    from dlc.runtime.stopping import Diverged, Interrupted

    imports = time.perf_counter() - imports_started
    if _interrupts.requested:
        return _interrupted(out, resume_command)

    progress = EpochProgress(args.epochs or program.epochs, program.name, quiet=args.quiet)
    _interrupts.notice = "\ndlc: stopping after this epoch (Ctrl-C again to abort)"
    try:
        with _warnings_shown(args.color):
            api_program.fit(epochs=args.epochs, seed=args.seed, on_epoch=progress, checkpoint_dir=out / "training",
                            resume=resume, checkpoint_interval=args.checkpoint_interval,
                            should_stop=lambda: _interrupts.requested, devices=args.devices,
                            on_compiled=progress.compiled)
    except SpecError as e:
        _discard_unstarted(out, created)
        _print_diagnostics(e.diagnostics, {shown: text}, "text", args.color, sys.stderr)
        return EXIT_ERRORS
    except Interrupted as e:
        if e.history:
            try:
                write_history(out, e.history)
            except _runtime_errors() as error:
                return _failure(str(error))
        return _interrupted(out, resume_command, e.epoch)
    except RunLockedError as e:
        return _usage_error(str(e))
    except Diverged as e:
        try:
            write_history(out, e.history)
        except _runtime_errors() as error:
            return _failure(str(error))
        lr = program.optimizer.args["lr"] if program.optimizer else None
        last = f"epoch {e.epoch - 1} is the last finite one; " if e.epoch > 1 and e.start is None else ""
        return _failure(f"{e}; {last}lower the learning rate (`lr={lr:g}` now) or clip gradients "
                        f"(`clip=1.0` on `optimizer`)")
    except (MemoryGuardError, ResumeError, DeviceError, ValueError, *_runtime_errors()) as e:
        _discard_unstarted(out, created)
        return _failure(str(e))
    finally:
        progress.close()
        _interrupts.notice = ""
    session = api_program.trained
    try:
        metrics = write_run(out, session)
    except _runtime_errors() as e:
        return _failure(str(e))
    if _interrupts.requested:  # during the final evaluation and writes, which were finished first
        print(f"dlc: interrupted as the run finished; its folder is complete: {out}", file=sys.stderr)
        return _interrupts.status
    result = session.result
    how = f"stopped early after {metrics['epochs_run']} epochs" if metrics["stopped_early"] \
        else f"{metrics['epochs_run']} epochs"
    best = f", weights of epoch {result.best_epoch}" if session.program.early_stop and \
        session.program.early_stop.restore_best else ""
    print(f"{session.program.name}: {how}{best}, {result.wall_time:.1f} s")
    print(_metrics_table(metrics), end="")
    print(f"run folder: {out}")
    if args.profile:
        print(_profile(imports, result))
    if args.repeat_check:
        return _repeat_check(args, session, data, shown, base)
    return EXIT_OK


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


def _repeat_check(args: argparse.Namespace, first, data: bytes, shown: str, base: Path | None) -> int:
    """Train the same spec with the same seed again and compare every number: history (all but
    the timings) and final parameters, bit for bit."""
    import jax
    import numpy as np

    from dlc.api import compile as compile_spec

    again = compile_spec(data, path=shown, base_dir=base)
    again.fit(epochs=args.epochs, seed=args.seed)
    second = again.trained
    strip = [{k: v for k, v in row.items() if k != "epoch_time"} for row in first.history]
    history_same = strip == [{k: v for k, v in row.items() if k != "epoch_time"} for row in second.history]
    leaves = zip(jax.tree.leaves(first.state.params), jax.tree.leaves(second.state.params))
    params_same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in leaves)
    if history_same and params_same:
        print(f"repeat check: a second run gave the identical history ({len(strip)} epochs) and parameters")
        return EXIT_OK
    what = " and ".join(w for w, same in (("history", history_same), ("parameters", params_same)) if not same)
    return _failure(f"repeat check: a second run with the same seed gave a different {what}")


def _load_run(run_dir: str):
    from dlc.api import SpecError, load_run
    from dlc.runtime.storage import RunFolderError

    try:
        return load_run(run_dir)
    except SpecError as e:  # its errors as `dlc check` prints them, then one line
        print(e, file=sys.stderr)
        if all(d.code.startswith("E60") for d in e.diagnostics if d.is_error):
            # A run folder of an older dlc records no facts of its data: reloading it reads the data file.
            raise RunFolderError(f"`{run_dir}` was written by an older dlc, which reads the data it trained on to "
                                 "reload a run, and that data cannot be read: restore it, or train again") from None
        raise RunFolderError(f"the spec of `{run_dir}` has errors: was spec.dl edited after the run?") from None


def _spec_target(program) -> str | None:
    """The label column the run was trained with (`target=` of a CSV source), if any."""
    data = program.trained.program.data
    return data.target if data else None


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    try:
        program = _load_run(args.run_dir)
        session = program.trained
        from dlc.runtime.sources import DataError, read_features

        if args.data:
            x, y, source = read_features(Path(args.data), target=args.target or _spec_target(program) or "target",
                                         with_target=True, columns=session.prepared.columns)
            metrics = {Path(args.data).name: session.evaluate(x, y, source)}
        else:
            try:
                metrics = session.evaluate_spec_splits()
            except DataError as e:
                return _failure(f"evaluating the splits of `{args.run_dir}` reads the data it trained on: {e} "
                                f"(to evaluate on other data: `dlc eval {args.run_dir} DATA`)")
    except (ValueError, *_runtime_errors()) as e:  # SpecError is a ValueError
        return _failure(str(e))
    if args.format == "json":
        print(json.dumps(metrics, indent=2))
    else:
        print(_metrics_table(metrics) if not args.data else json.dumps(metrics, indent=2))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    try:
        program = _load_run(args.run_dir)
        from dlc.runtime.sources import read_features

        # Columns are found by name (the training CSV itself will do): a label column is never read.
        x, _, source = read_features(Path(args.input), target=args.target or _spec_target(program),
                                     columns=program.trained.prepared.columns)
        outputs = program.trained.predict(x, source)
    except (ValueError, *_runtime_errors()) as e:  # SpecError is a ValueError
        return _failure(str(e))
    from dlc.runtime.session import prediction_rows

    rows = prediction_rows(program.trained, outputs)
    import csv
    import io

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
    p.add_argument("--emit", choices=("summary", "ir"), default="summary",
                   help="summary: layers, shapes, parameters and settings; ir: the checked program as JSON")
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
