"""`dlc check`: exit status, the text and JSON forms of diagnostics, several specs, stdin.
Called in-process through `dlc.cli.main`; only the import test needs a fresh interpreter."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from dlc.cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, main

VALID = "input 4\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n"
INVALID = "input 4\ndense 3 rleu\ndropout 1.5\nloss categorical_crossentropy\noptimizer adam\n"
CONTRACT_KEYS = {"path", "line", "col", "end_line", "end_col", "severity", "code", "message", "hint"}
HEADER = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning)\[(?P<code>[EW]\d{3})\]: "
                    r"(?P<message>.+)$")


@pytest.fixture
def spec(tmp_path: Path):
    """Writes a spec file and returns its path as a string."""
    def write(text: str, name: str = "spec.dl") -> str:
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)
    return write


def test_a_valid_spec_exits_0(spec, capsys) -> None:
    assert main(["check", spec(VALID)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == "" and err == "1 spec ok\n"


def test_quiet_prints_nothing_for_a_valid_spec(spec, capsys) -> None:
    assert main(["check", "-q", spec(VALID)]) == EXIT_OK
    assert capsys.readouterr() == ("", "")


def test_errors_exit_1_and_every_error_is_printed(spec, capsys) -> None:
    assert main(["check", spec(INVALID)]) == EXIT_ERRORS
    out, err = capsys.readouterr()
    headers = [m.groupdict() for line in out.splitlines() if (m := HEADER.match(line))]
    assert [(h["line"], h["code"]) for h in headers] == [("2", "E203"), ("3", "E301")]
    assert err == "2 errors\n"


def test_warnings_alone_exit_0(spec, capsys) -> None:
    assert main(["check", spec("input 4\ndense 1\n")]) == EXIT_OK
    out, err = capsys.readouterr()
    assert re.findall(r"warning\[(W\d+)\]", out) == ["W101", "W102"]
    assert err == "2 warnings\n"


def test_text_form_is_header_source_line_caret_hint(spec, capsys) -> None:
    path = spec(INVALID)
    main(["check", path])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        f"{path}:2:9: error[E203]: unknown activation `rleu`",
        " 2 | dense 3 rleu",
        "   |         ^^^^",
        "hint: did you mean `relu`?",
    ]


def test_no_colour_when_not_a_terminal_and_colour_when_asked(spec, capsys) -> None:
    path = spec(INVALID)
    main(["check", path])
    assert "\033[" not in capsys.readouterr().out
    main(["check", "--color", "always", path])
    assert "\033[" in capsys.readouterr().out


def test_json_is_a_list_with_the_contracts_keys(spec, capsys) -> None:
    path = spec(INVALID)
    assert main(["check", "--format", "json", path]) == EXIT_ERRORS
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert isinstance(found, list) and all(CONTRACT_KEYS <= item.keys() for item in found)
    assert [(d["path"], d["line"], d["col"], d["code"], d["severity"]) for d in found] == \
        [(path, 2, 9, "E203", "error"), (path, 3, 9, "E301", "error")]
    assert err == ""


def test_json_of_a_valid_spec_is_an_empty_list(spec, capsys) -> None:
    assert main(["check", "--format", "json", spec(VALID)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []


def test_several_specs_in_one_call(spec, capsys) -> None:
    good, bad = spec(VALID, "good.dl"), spec(INVALID, "bad.dl")
    other = spec("input 4\nbatch 0\nloss mse\noptimizer adam\n", "other.dl")
    assert main(["check", "--format", "json", good, bad, other]) == EXIT_ERRORS
    found = json.loads(capsys.readouterr().out)
    assert [(d["path"], d["code"]) for d in found] == [(bad, "E203"), (bad, "E301"), (other, "E301")]
    assert main(["check", good, good]) == EXIT_OK
    assert capsys.readouterr().err == "2 specs ok\n"


def test_stdin_is_read_for_a_dash(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(INVALID.encode())))
    assert main(["check", "-"]) == EXIT_ERRORS
    assert capsys.readouterr().out.startswith("<stdin>:2:9: error[E203]: ")


def test_a_file_that_is_not_utf8_is_one_error_with_its_line_shown(spec, capsys) -> None:
    path = spec(b"input 4\nmodel caf\xe9\n")
    assert main(["check", path]) == EXIT_ERRORS
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}:2:10: error[E111]: ")
    assert lines[1] == " 2 | model caf\ufffd"


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nowhere.dl")]) == EXIT_USAGE
    assert "no such spec file" in capsys.readouterr().err


def test_a_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path)]) == EXIT_USAGE
    assert "not a file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["check", "--bogus"], ["check"], ["check", "--format", "xml", "x.dl"], ["frobnicate"]])
def test_a_bad_command_line_exits_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_USAGE
    assert "dlc: error:" in capsys.readouterr().err


def test_relative_data_paths_start_at_the_specs_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "table.csv").write_text("a,b,y\n1,2,3\n")
    (tmp_path / "spec.dl").write_text('data "table.csv" target="y"\ndense 1\nloss mse\noptimizer adam\n')
    monkeypatch.chdir(tmp_path.parent)
    assert main(["check", str(Path(tmp_path.name) / "spec.dl")]) == EXIT_OK
