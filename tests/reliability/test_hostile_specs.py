"""Hostile spec files through `dlc check`/`dlc compile` and the API: binary and non-UTF-8 bytes,
NUL and terminal escapes, megabyte lines, ten thousand statements, deep nesting, numbers too large
for anything, repeats that would expand to a million layers, and paths that are no spec file. Each
gets diagnostics or one `dlc: error:` line and its exit status, quickly, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import assert_diagnosed, assert_no_crash, assert_refused, dlc

import dlc as api
from dlc.cli import EXIT_OK, EXIT_USAGE, MAX_SPEC_BYTES
from dlc.compiler.check import MAX_INT, MAX_LAYERS, check_text
from dlc.grammar.parse import MAX_BLOCK_DEPTH

TRAINABLE = "loss mse\noptimizer adam\n"
MEGABYTE = 1_000_000


def spec_file(tmp_path: Path, content: str | bytes, name: str = "spec.dl") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def error_codes(text: str) -> list[str]:
    return [d.code for d in check_text(text)[1] if d.is_error]


# --- bytes that are not spec text ---------------------------------------------------------------

NOT_TEXT = {
    "binary": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
    "latin-1": "model café\ninput 4\n".encode("latin-1"),
    "utf-16": "input 4\ndense 1\n".encode("utf-16"),
    "truncated utf-8": b"model caf" + "é".encode()[:1],
}


@pytest.mark.parametrize("content", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_bytes_that_are_not_utf8_are_one_error(tmp_path, content):
    answer = dlc("check", spec_file(tmp_path, content))
    assert_diagnosed(answer, "E111")
    assert answer.out.count("error[") == 1


def test_nul_bytes_are_errors_each_and_the_rest_is_checked(tmp_path):
    answer = dlc("check", spec_file(tmp_path, b"input 4\x00\ndense 0\x00\x00\n" + TRAINABLE.encode()))
    assert_diagnosed(answer, "E100", "E301")
    assert answer.out.count("error[E100]") == 3


def test_terminal_escapes_and_bidi_overrides_never_reach_the_terminal(tmp_path):
    """A spec can hold the escape that recolours a terminal or the override that reorders a line
    ("Trojan Source"): its source lines are shown with such characters replaced."""
    answer = dlc("check", spec_file(tmp_path, "input 4\n\x1b[2Jdense 4\n# \u202e fdp.exe\ndense 0\n" + TRAINABLE))
    assert_diagnosed(answer, "E100", "E301")


@pytest.mark.parametrize("line_break", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_the_caret_line_is_the_line_the_error_is_on(tmp_path, line_break):
    """Lines are counted at `\\n` only, as spans count them: a form feed, a lone `\\r` or a Unicode
    line separator inside a line does not shift which source line is shown."""
    text = line_break.join(["input 4", "# a\u2028b\x0cc\rd", "dense 0", "loss mse", "optimizer adam", ""])
    answer = dlc("check", spec_file(tmp_path, text))
    assert_diagnosed(answer, "E301")
    shown = answer.out.splitlines()
    assert shown[0].endswith("`dense` units must be ≥ 1, got 0") and shown[1] == " 3 | dense 0"


# --- size: long lines, many statements, deep blocks, huge numbers --------------------------------

MEGABYTE_LINES = {
    "comment": ("#" + "x" * MEGABYTE, []),
    "name": ("dense 4 " + "a" * MEGABYTE, ["E203"]),
    "keyword": ("b" * MEGABYTE + " 4", ["E200"]),
    "number": ("dense " + "9" * MEGABYTE, ["E109"]),
    "bad number": ("dense 9" + "x" * MEGABYTE, ["E109"]),
    "string": ('model "' + "s" * MEGABYTE + '"', ["E300"]),
    "unterminated string": ('model "' + "s" * MEGABYTE, ["E106"]),
}


@pytest.mark.parametrize(("line", "codes"), MEGABYTE_LINES.values(), ids=MEGABYTE_LINES.keys())
def test_a_megabyte_line_prints_as_a_screenful(tmp_path, line, codes):
    """Source lines are shown as a window around the error, and a megabyte-long name is shortened
    in the message, so that what is printed stays a few lines however long the line is."""
    answer = dlc("check", spec_file(tmp_path, f"input 4\n{line}\ndense 1\n{TRAINABLE}"))
    if codes:
        assert_diagnosed(answer, *codes)
    else:
        assert_no_crash(answer)
        assert answer.status == EXIT_OK
    assert len(answer.out) < 5_000 and all(len(line) < 1_000 for line in answer.out.splitlines())


def test_many_errors_on_one_long_line_each_cost_a_window():
    from dlc.compiler.diagnostics import MAX_DIAGNOSTICS, render_text

    text = "input 4\n" + "dense 0; " * 20_000
    diagnostics = check_text(text)[1]
    assert sum(d.code == "E301" for d in diagnostics) == MAX_DIAGNOSTICS
    assert len(render_text(diagnostics, {"<spec>": text})) < 1_000 * len(diagnostics)


def test_a_file_over_the_spec_size_is_refused_unread(tmp_path, monkeypatch):
    path = spec_file(tmp_path, b"#" * (MAX_SPEC_BYTES + 1))
    assert_refused(dlc("check", path), "too large to be a spec", EXIT_USAGE)
    assert_refused(dlc("compile", path), "too large to be a spec", EXIT_USAGE)
    with open(path, "rb") as stdin:
        monkeypatch.setattr("sys.stdin", type("Stdin", (), {"buffer": stdin})())
        assert_refused(dlc("check", "-"), "too large to be a spec", EXIT_USAGE)


def test_ten_thousand_layers_check_and_one_more_is_an_error(tmp_path):
    lines = ["input 4", *["dense 4"] * MAX_LAYERS, TRAINABLE]
    assert dlc("check", spec_file(tmp_path, "\n".join(lines))).status == EXIT_OK
    answer = dlc("check", spec_file(tmp_path, "\n".join([*lines, "dense 1"])))
    assert_diagnosed(answer, "E309")
    assert f"{MAX_LAYERS + 1:,} layers" in answer.out


def test_nested_repeats_are_counted_not_expanded():
    """`repeat 1000 { repeat 1000 { ... } }` is a million layers: refused by counting, at the outer
    `repeat`, without building any of them; the layers after it are not blamed."""
    program, diagnostics = check_text("input 4\nrepeat 1000 { repeat 1000 { dense 4 } }\ndense 0\n"
                                      "repeat 1000 { repeat 1000 { repeat 1000 { dense 4 } } }\n" + TRAINABLE)
    assert program is None
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics] == [("E309", 2, 1), ("E301", 3, 7)]
    layers = (1 + 1000 * (1 + 1000)) + 1 + (1 + 1000 * (1 + 1000 * (1 + 1000)))  # a block is a layer too
    assert f"the model has {layers:,} layers once `repeat` blocks are expanded" in diagnostics[0].message


def test_blocks_deeper_than_the_limit_are_one_error(tmp_path):
    depth = 10 * MAX_BLOCK_DEPTH
    answer = dlc("check", spec_file(tmp_path, "input 4\n" + "residual { " * depth + "dense 4" + " }" * depth))
    assert_diagnosed(answer, "E101")
    assert answer.out.count("error[") == 1 and f"nest more than {MAX_BLOCK_DEPTH} deep" in answer.out


def test_thousands_of_unclosed_blocks_stop_at_the_depth_limit(tmp_path):
    """Blocks never closed nest: the one too deep is refused with what it holds, and every unclosed
    block around it is found in one pass over the text, not one pass per block."""
    answer = dlc("check", spec_file(tmp_path, "input 4\n" + "residual {\n" * 5_000 + "dense 4\n"))
    assert_diagnosed(answer, "E103", "E101")
    assert answer.out.count("error[E103]") == MAX_BLOCK_DEPTH
    assert answer.out.count(f"error[E101]: blocks nest more than {MAX_BLOCK_DEPTH} deep") == 1


HUGE_NUMBERS = {
    "units": ("input 4\ndense 99999999999", "E301", f"`dense` units must be ≤ {MAX_INT}, got 99999999999"),
    "input side": ("input 99999999999x2x3", "E301", f"`input` must be ≤ {MAX_INT}"),
    "kernel side": ("input 8x8x1\nconv2d 4 3x99999999999", "E301", "`conv2d` kernel must be ≤"),
    "batch": ("batch 4294967296", "E301", "`batch` must be ≤"),
    "integer beyond python's digits": ("input 4\ndense " + "7" * 5_000, "E109", "is too large to be a number"),
    "shape beyond python's digits": ("input 2x" + "7" * 5_000, "E109", "is too large to be a number"),
    "float beyond the largest": ("optimizer adam lr=1e309", "E109", "`1e309` is too large to be a number"),
    "float below the smallest": ("optimizer adam lr=1e-400", "E301", "`lr` must be > 0, got 1e-400"),
    "negative beyond any": ("seed -" + "9" * 100, "E301", "`seed` must be in [0, 4294967295]"),
}


@pytest.mark.parametrize(("text", "code", "message"), HUGE_NUMBERS.values(), ids=HUGE_NUMBERS.keys())
def test_numbers_too_large_for_anything_are_errors(text, code, message):
    _, diagnostics = check_text(text)
    assert [d.code for d in diagnostics if d.is_error] == [code]
    assert message in next(d.message for d in diagnostics if d.is_error)


def test_the_largest_floats_and_counts_are_accepted():
    assert error_codes(f"input {MAX_INT}\noptimizer adam lr=1e308\nbatch {MAX_INT}") == []


# --- paths that are no spec file ------------------------------------------------------------------


def test_a_folder_is_no_spec(tmp_path):
    assert_refused(dlc("check", str(tmp_path)), "not a file", EXIT_USAGE)
    assert_refused(dlc("compile", str(tmp_path)), "not a file", EXIT_USAGE)


def test_a_loop_of_symbolic_links_is_named(tmp_path):
    (tmp_path / "a.dl").symlink_to(tmp_path / "b.dl")
    (tmp_path / "b.dl").symlink_to(tmp_path / "a.dl")
    assert_refused(dlc("check", str(tmp_path / "a.dl")), "cannot read", EXIT_USAGE)


def test_a_broken_symbolic_link_is_a_missing_spec(tmp_path):
    (tmp_path / "a.dl").symlink_to(tmp_path / "gone.dl")
    assert_refused(dlc("check", str(tmp_path / "a.dl")), "no such spec file", EXIT_USAGE)


def test_an_unreadable_spec_is_named(tmp_path):
    path = spec_file(tmp_path, "input 4\n")
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: a file without permissions is still readable")
        assert_refused(dlc("check", path), "cannot read", EXIT_USAGE)
    finally:
        os.chmod(path, 0o644)


@pytest.mark.parametrize("name", ["x" * 5_000, "", "nul\x00byte", "\x1b[31mred.dl"],
                         ids=["too long", "empty", "nul", "escape"])
def test_names_no_file_system_takes_are_usage_errors(name):
    assert_refused(dlc("check", name), status=EXIT_USAGE)


# --- the API: an invalid spec is a SpecError, whatever its text --------------------------------


@pytest.mark.parametrize("text", [line for line, codes in MEGABYTE_LINES.values() if codes]
                         + [text for text, _, _ in HUGE_NUMBERS.values()]
                         + ["input 4\nrepeat 1000 { repeat 1000 { dense 4 } }", "\x00" * 100, "}" * 1_000],
                         ids=lambda text: repr(text[:20]))
def test_the_api_raises_spec_error_and_nothing_else(text):
    with pytest.raises(api.SpecError) as caught:
        api.compile(text + "\ninput 4\n" + TRAINABLE)
    assert caught.value.diagnostics
