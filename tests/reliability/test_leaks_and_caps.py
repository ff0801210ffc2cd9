"""Nothing leaked, nothing slow. A spec from a cloned repository or a pull request cannot make dlc
read a kernel file, a device or a pipe and print it, and hints quote a few parsed names, never a
file's bytes. A spec of a megabyte of mistakes, of any shape, checks in a moment and prints a
screenful: the parser and the checker stop at MAX_DIAGNOSTICS and say so, in text and in JSON."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from hostile import TERMINAL_CONTROLS, assert_diagnosed, dlc
from hypothesis import HealthCheck, given, settings
from strategies import SHIPPED_SPECS, mutated, texts

from dlc.cli import MAX_SPEC_BYTES
from dlc.compiler.check import check_text
from dlc.compiler.datafacts import LISTED_NAMES
from dlc.compiler.diagnostics import MAX_DIAGNOSTICS
from dlc.grammar import parse as parsing
from dlc.grammar.parse import MAX_BLOCK_DEPTH, MAX_STATEMENT_TOKENS
from dlc.runtime.sources import DataError, read_features

TRAIN = "\ndense 1\nloss mse\noptimizer sgd lr=0.01\nepochs 1\n"
ENVIRON = Path("/proc/self/environ")


def spec_on(folder: Path, data: str) -> Path:
    spec = folder / "spec.dl"
    spec.write_text(f'data "{data}" target="no_such_column"{TRAIN}', encoding="utf-8")
    return spec


def an_environment_entry() -> str:
    """Text that dlc printed from the environment through a link to /proc/self/environ: the first
    entry of this process's environment as the kernel gives it."""
    return ENVIRON.read_bytes().split(b"\0")[0].decode(errors="replace").split(",")[0].strip()


def kernel_file_links(folder: Path) -> dict[str, Path]:
    (folder / "environ.csv").symlink_to(ENVIRON)
    (folder / "hop.csv").symlink_to(folder / "environ.csv")
    return {"a link into /proc": folder / "environ.csv", "a link to a link into /proc": folder / "hop.csv"}


@pytest.mark.skipif(not ENVIRON.is_file(), reason="no /proc here")
@pytest.mark.parametrize("name", ["a link into /proc", "a link to a link into /proc"])
def test_a_data_path_into_proc_is_refused_and_never_printed(tmp_path, name):
    """/proc files stat as regular files of size 0; the old check printed the environment's first
    entries as the CSV's columns in E602's hint."""
    path = kernel_file_links(tmp_path)[name]
    secret = an_environment_entry()
    spec = spec_on(tmp_path, path.name)
    for answer in (dlc("check", str(spec)), dlc("run", str(spec), "-q", "--out", str(tmp_path / "run"))):
        assert_diagnosed(answer, "E606")
        assert "made up by the kernel" in answer.out + answer.err and secret not in answer.out + answer.err
    assert [d["code"] for d in json_diagnostics(spec)] == ["E606"] and secret not in json.dumps(json_diagnostics(spec))
    with pytest.raises(DataError, match="made up by the kernel"):
        read_features(path, target="no_such_column", with_target=True)


def test_pipes_and_devices_are_refused_at_check_and_at_run(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    for name in ("pipe.csv", "zero.csv"):
        spec = spec_on(tmp_path, name)
        assert_diagnosed(dlc("check", str(spec)), "E606")
        with pytest.raises(DataError, match="a device, a pipe or a socket"):
            read_features(tmp_path / name, target="t", with_target=True)


def json_diagnostics(spec: Path) -> list[dict]:
    answer = dlc("check", "--format", "json", str(spec))
    return json.loads(answer.out)


def test_a_column_hint_lists_a_few_short_printable_names(tmp_path):
    header = [f"c{i}" for i in range(500)] + ["\x1b[2J\x1b[31mred", "w" * 10_000]
    (tmp_path / "d.csv").write_text(",".join(header) + "\n" + ",".join("1" * len(header)) + "\n", encoding="utf-8")
    hint = json_diagnostics(spec_on(tmp_path, "d.csv"))[0]["hint"]
    assert hint.count("`") == 2 * LISTED_NAMES and f"and {len(header) - LISTED_NAMES:,} more" in hint
    assert len(hint) < 2_000 and not TERMINAL_CONTROLS.search(hint)


def test_an_npz_hint_lists_a_few_member_names(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        for i in range(300):
            z.writestr(f"m{i}\x1b[31m.npy", b"")
    (tmp_path / "spec.dl").write_text(f'data "d.npz"{TRAIN}', encoding="utf-8")
    hint = json_diagnostics(tmp_path / "spec.dl")[0]["hint"]
    assert f"and {300 - LISTED_NAMES:,} more" in hint and len(hint) < 2_000 and not TERMINAL_CONTROLS.search(hint)


def test_a_csv_header_that_never_ends_is_refused_unread(tmp_path):
    (tmp_path / "d.csv").write_text("a," * 2_000_000, encoding="utf-8")
    answer = dlc("check", str(spec_on(tmp_path, "d.csv")))
    assert_diagnosed(answer, "E606")
    assert "header line over" in answer.out and len(answer.out) < 5_000


def fill(head: str, unit: str) -> str:
    return head + unit * ((MAX_SPEC_BYTES - len(head)) // len(unit))


# Specs of a megabyte, each all mistakes of one kind (the old checker took 10 to 300 s on them, and
# printed up to 177 MB).
MEGABYTES_OF_MISTAKES = {
    "unknown statements": fill("", "foo\n"),
    "unknown layers": fill("input 4\n", "layer foo\n"),
    "values out of range": fill("input 4\n", "dense -1\n"),
    "unknown options": fill("input 4\n", "dense 4 zz=1\n"),
    "a setting repeated": fill("", "epochs 1\n"),
    "unknown escapes": fill("", 'model "\\q"\n'),
    "syntax errors": fill("", "= \n"),
    "syntax errors after a clean megabyte": fill("", "foo\n")[:-200] + "=\n" * 100,
    "one line of values": fill("input 4\ndense ", "1 "),
    "one line of bad numbers": fill("input 4\ndense ", "1__2 "),
    "one line of statements": fill("input 4\n", "dense 0; "),
    "blocks never closed on one line": fill("input 4\n", "residual { "),
}


@pytest.mark.parametrize("text", MEGABYTES_OF_MISTAKES.values(), ids=MEGABYTES_OF_MISTAKES.keys())
def test_a_megabyte_of_mistakes_checks_in_a_moment_and_prints_a_screenful(tmp_path, text):
    (tmp_path / "spec.dl").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    answer = dlc("check", str(tmp_path / "spec.dl"))
    took = time.perf_counter() - started
    assert_diagnosed(answer)
    assert answer.out.count("error[") <= MAX_DIAGNOSTICS + 1 and len(answer.out) < 50_000
    assert took < 5, f"{took:.1f} s"  # under a second on one core; the old checker took 10 s or more


def test_json_is_as_bounded_and_its_last_entry_says_where_checking_stopped(tmp_path):
    (tmp_path / "spec.dl").write_text(MEGABYTES_OF_MISTAKES["unknown statements"], encoding="utf-8")
    entries = json_diagnostics(tmp_path / "spec.dl")
    assert len(entries) == MAX_DIAGNOSTICS + 1
    assert [e["code"] for e in entries[:-1]] == ["E200"] * MAX_DIAGNOSTICS
    assert entries[-1]["code"] == "E101"
    assert entries[-1]["message"] == f"too many errors; stopped after {MAX_DIAGNOSTICS}"


def test_syntax_and_checker_errors_share_one_cap():
    half = MAX_DIAGNOSTICS // 2
    _, diagnostics = check_text("input 4\n" + "dense 4 @\n" * half + "dense 0\n" * MAX_DIAGNOSTICS)
    assert [d.code for d in diagnostics] == ["E100"] * half + ["E301"] * (MAX_DIAGNOSTICS - half) + ["E101"]


def test_a_statement_of_too_many_tokens_is_one_error_and_the_next_lines_are_checked():
    text = "input 4\ndense " + "1 " * 2 * MAX_STATEMENT_TOKENS + "\ndense 0\nloss mse\noptimizer adam\n"
    _, diagnostics = check_text(text)
    assert [(d.code, d.span.line) for d in diagnostics] == [("E101", 2), ("E301", 3)]
    assert f"more than {MAX_STATEMENT_TOKENS:,} tokens" in diagnostics[0].message


def test_blocks_too_deep_are_refused_whole_even_when_never_closed():
    _, diagnostics = check_text("input 4\n" + "residual { " * 5_000)
    codes = [d.code for d in diagnostics if d.is_error]
    assert codes.count("E101") == 1 and codes.count("E103") == MAX_BLOCK_DEPTH


# Statements that recovery reads over more than one line, or whose braces, brackets and separators
# hide in strings and comments: a part never ends inside one.
TRICKY = ('repeat 2 {\n  dense 4 # } ; {\n}\nmodel "a;{" ; dense 2\nx [1,\n 2] ; dense 0\nx [1\n, 2]\n'
          'residual { dense 4 ;\n dropout 0.5 }\nmodel "}\ndense 4 } ; dense 4\n')


def statements_and_errors(text: str) -> tuple[list, list]:
    spec, diagnostics = parsing.parse(text)
    return ([(type(s).__name__, s, s.span) for s in spec.statements],
            sorted((d.span.start, d.span.end, d.code, d.message) for d in diagnostics))


def test_a_spec_parsed_in_parts_is_the_spec_parsed_whole(monkeypatch):
    text = "input 4\n" + TRICKY * 5
    monkeypatch.setattr(parsing, "PART_CHARS", len(text) + 1)
    whole = statements_and_errors(text)
    monkeypatch.setattr(parsing, "PART_CHARS", 1)  # a part ends at every place one may
    assert statements_and_errors(text) == whole
    assert whole[1] and len(whole[1]) < MAX_DIAGNOSTICS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated((TRICKY, *(path.read_text(encoding="utf-8") for path in SHIPPED_SPECS))) | texts)
def test_any_text_parsed_in_parts_is_the_text_parsed_whole(text):
    shown = parsing.PART_CHARS
    try:
        parsing.PART_CHARS = len(text) + 1
        whole = statements_and_errors(text)
        assert not any(parsing.PLACEHOLDER in message for *_, message in whole[1])  # never shown to a user
        parsing.PART_CHARS = 1
        assert statements_and_errors(text) == whole
    finally:
        parsing.PART_CHARS = shown
