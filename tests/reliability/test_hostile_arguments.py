"""Bad command lines: unknown commands and flags, missing arguments, values out of range, output
paths that cannot be written. Each is a usage error: exit 2 and one `dlc: error:` line (after
argparse's usage line), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hostile import assert_no_crash, assert_refused, dlc

from dlc.cli import EXIT_USAGE


@pytest.fixture
def spec(tmp_path) -> str:
    path = tmp_path / "spec.dl"
    path.write_text("data iris val=0.2\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n",
                    encoding="utf-8")
    return str(path)


USAGE = {
    "no command": ([], "arguments are required"),
    "unknown command": (["train"], "invalid choice: 'train'"),
    "unknown flag": (["check", "--strict", "{spec}"], "unrecognized arguments: --strict"),
    "flag of another command": (["check", "--epochs", "3", "{spec}"], "unrecognized arguments"),
    "check without a spec": (["check"], "arguments are required: SPEC"),
    "compile without a spec": (["compile"], "arguments are required: SPEC"),
    "run without a spec": (["run"], "arguments are required: SPEC"),
    "eval without a run": (["eval"], "arguments are required: RUN_DIR"),
    "predict without input": (["predict", "runs/x"], "arguments are required: INPUT"),
    "unknown format": (["check", "--format", "xml", "{spec}"], "invalid choice: 'xml'"),
    "unknown emission": (["compile", "{spec}", "--emit", "onnx"], "invalid choice: 'onnx'"),
    "unknown colour": (["check", "--color", "rainbow", "{spec}"], "invalid choice: 'rainbow'"),
    "epochs not a number": (["run", "{spec}", "--epochs", "many"], "invalid int value: 'many'"),
    "epochs 0": (["run", "{spec}", "--epochs", "0"], "--epochs must be at least 1"),
    "epochs negative": (["run", "{spec}", "--epochs", "-5"], "--epochs must be at least 1"),
    "seed negative": (["run", "{spec}", "--seed", "-1"], "--seed must be in [0, 2^32)"),
    "seed too large": (["run", "{spec}", "--seed", str(2**32)], "--seed must be in [0, 2^32)"),
    "seed a float": (["run", "{spec}", "--seed", "1.5"], "invalid int value: '1.5'"),
    "devices 0": (["run", "{spec}", "--devices", "0"], "at least 1"),
    "resume without a folder": (["run", "{spec}", "--resume"], "--resume needs --out DIR"),
    "unknown code": (["explain", "E999"], "unknown code E999"),
    "a path for a code": (["explain", "../../etc/passwd"], "unknown code"),
    "missing spec": (["compile", "missing.dl"], "no such spec file: missing.dl"),
    "second spec missing": (["check", "{spec}", "missing.dl"], "no such spec file: missing.dl"),
    "escape in a name": (["check", "\x1b]0;pwned\x07.dl"], "no such spec file"),
}


@pytest.mark.parametrize(("argv", "message"), USAGE.values(), ids=USAGE.keys())
def test_a_bad_command_line_is_a_usage_error(spec, argv, message):
    assert_refused(dlc(*(arg.replace("{spec}", spec) for arg in argv)), message, EXIT_USAGE)


def test_output_that_cannot_be_written_is_a_usage_error(spec, tmp_path):
    for out in (tmp_path / "missing" / "summary.txt", tmp_path):
        assert_refused(dlc("compile", spec, "-o", str(out)), "cannot write", EXIT_USAGE)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("")
    assert_refused(dlc("run", spec, "--out", str(tmp_path / "taken")), "already exists and is not empty", EXIT_USAGE)



def test_run_of_a_spec_without_data_is_one_line(tmp_path):
    path = tmp_path / "arrays_only.dl"
    path.write_text("input 4\ndense 1\nloss mse\noptimizer adam\n", encoding="utf-8")
    assert_refused(dlc("run", str(path), "--out", str(tmp_path / "run")), "`data`")


def test_a_real_process_exits_2_with_usage_and_one_error_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dlc.cli", "check", "--strict", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.splitlines()[0].startswith("usage: dlc")
    assert done.stderr.splitlines()[-1] == "dlc: error: unrecognized arguments: --strict"
    assert_no_crash(type("Answer", (), {"out": done.stdout, "err": done.stderr})())


def test_a_bug_is_one_line_unless_its_traceback_is_asked_for(monkeypatch):
    """The last line of defence: whatever escapes every check prints one line naming itself a bug."""
    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr("dlc.cli.cmd_explain", broken)  # the parser is built, with its commands, per call
    answer = dlc("explain", "E100")
    assert answer.status == 1 and answer.err.startswith("dlc: error: internal error: KeyError: 'boom'")
    monkeypatch.setenv("DLC_TRACEBACK", "1")
    with pytest.raises(KeyError):
        dlc("explain", "E100")


def test_paths_are_resolved_only_by_the_file_system(tmp_path):
    """A spec path is never expanded by a shell or a template: `~`, `$HOME` and `*` are names."""
    for name in ("~/spec.dl", "$HOME/spec.dl", str(Path(tmp_path) / "*.dl")):
        assert_refused(dlc("check", name), "no such spec file", EXIT_USAGE)
