"""The `dlc` command line's grammar: its verbs, their arguments and options, and usage errors as
one short line (argparse's exit status 2). Which function runs a verb is the caller's to say.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dlc.terminal import one_line

EXIT_USAGE = 2
Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep its message short
        self.print_usage(sys.stderr)
        print(f"dlc: error: {one_line(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


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


def build_parser(handlers: dict[str, Handler]) -> argparse.ArgumentParser:
    """The parser of every verb; `handlers` maps each verb to the function that runs it (as
    `args.func`)."""
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
    p.set_defaults(func=handlers["check"])

    p = sub.add_parser("compile", help="check a spec, then show or emit the model")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--emit", choices=("summary", "ir", "py", "hlo"), default="summary",
                   help="summary: layers, shapes, parameters and settings; ir: the checked program as JSON; "
                        "py: a standalone Flax/Optax program that trains it; hlo: the StableHLO of prediction "
                        "and of one training epoch")
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of standard output")
    p.add_argument("--format", choices=("text", "json"), default="text", help="how errors are printed")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(func=handlers["compile"])

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
    p.add_argument("--tensorboard", action="store_true",
                   help="write every epoch's loss, metrics and timing as TensorBoard events to DIR/tensorboard/ "
                        "(`tensorboard --logdir DIR/tensorboard`)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(func=handlers["run"])

    p = sub.add_parser("eval", help="evaluate a trained run on its data splits or on a data file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", nargs="?", metavar="DATA", help="a .csv or .npz file with labels")
    p.add_argument("--target", help="label column of a CSV (default: the spec's `target=`)")
    p.add_argument("--report", action="store_true",
                   help="also per-class precision, recall, F1 and support and the confusion matrix (regression: "
                        "residual statistics) on DATA, or on the test split (else val, else train), and its plot, "
                        "confusion.png (residuals.png), in RUN_DIR")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: tables; json: the same numbers for tools")
    p.set_defaults(func=handlers["eval"])

    p = sub.add_parser("predict", help="predict with a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("input", metavar="INPUT", help="a .csv or .npz file of examples")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="write predictions here instead of standard output")
    p.add_argument("--target", help="a CSV column to leave out of the features (default: the spec's `target=`)")
    p.set_defaults(func=handlers["predict"])

    p = sub.add_parser("export", help="export a trained run for use without dlc")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("stablehlo", "py"), default="stablehlo",
                   help="stablehlo: a serialized jax.export artifact of prediction from raw features; "
                        "py: a folder of the model's code, weights.npz, preprocessing.json and predict.py")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file (stablehlo) or folder (py) to write")
    p.set_defaults(func=handlers["export"])

    p = sub.add_parser("explain", help="explain a diagnostic code, with a failing and a fixed example")
    p.add_argument("code", nargs="?", metavar="CODE")
    p.add_argument("--markdown", action="store_true", help="print every explanation as docs/errors.md")
    p.set_defaults(func=handlers["explain"])
    return parser
