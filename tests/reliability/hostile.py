"""Running `dlc` in-process and holding it to its promise about bad input: an exit status and one
`dlc: error:` line (or, for a spec, the diagnostics `dlc check` prints), never a traceback."""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass

from dlc.cli import EXIT_ERRORS, main

# What must never reach a terminal from a file: control characters (the escape that starts a colour
# or moves the cursor among them) and the bidirectional overrides that reorder what is shown.
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Answer:
    status: int
    out: str
    err: str


def dlc(*args: str) -> Answer:
    """`dlc ARGS` in-process; a usage error that argparse ends with `SystemExit` is a status too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as e:
            status = e.code
    return Answer(status, out.getvalue(), err.getvalue())


def assert_no_crash(answer: Answer) -> None:
    """Neither a traceback nor the one line `main` prints for a bug in dlc."""
    for stream in (answer.out, answer.err):
        assert "Traceback" not in stream and "internal error" not in stream, stream[-2000:]


def assert_refused(answer: Answer, says: str = "", status: int = EXIT_ERRORS) -> None:
    """Exit `status`; stderr ends in the one `dlc: error:` line it holds, which contains `says` and
    no control character from a file or a name."""
    assert_no_crash(answer)
    assert answer.status == status, answer.err[-2000:]
    lines = answer.err.splitlines()
    errors = [line for line in lines if line.startswith("dlc: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], answer.err[-2000:]
    assert says in errors[0], errors[0]
    assert not TERMINAL_CONTROLS.search(errors[0]), errors[0]


def assert_diagnosed(answer: Answer, *codes: str) -> None:
    """Exit 1 with diagnostics, among them an error of each of `codes`, and no control character."""
    assert_no_crash(answer)
    assert answer.status == EXIT_ERRORS, answer.err[-2000:]
    shown = answer.out + answer.err
    for code in codes:
        assert f"error[{code}]" in shown, shown[-2000:]
    assert not any(TERMINAL_CONTROLS.search(line) for line in shown.splitlines()), shown[-2000:]
