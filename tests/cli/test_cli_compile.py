"""`dlc compile`: the summary table by default, the checked IR as JSON with `--emit ir`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlc.cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, main

CNN = "input 8x8x1\nconv2d 4 3x3 relu\nflatten\ndense 10 softmax\nloss categorical_crossentropy\noptimizer adam\n"
CONV, DENSE = 3 * 3 * 1 * 4 + 4, 6 * 6 * 4 * 10 + 10


@pytest.fixture
def cnn(tmp_path: Path) -> str:
    path = tmp_path / "cnn.dl"
    path.write_text(CNN)
    return str(path)


def test_ir_has_params_and_layers_with_kind_shape_and_params(cnn: str, capsys) -> None:
    assert main(["compile", cnn, "--emit", "ir"]) == EXIT_OK
    program = json.loads(capsys.readouterr().out)
    assert program["params"] == CONV + DENSE
    assert [(x["kind"], x["output_shape"], x["params"]) for x in program["layers"]] == [
        ("conv2d", [6, 6, 4], CONV), ("flatten", [144], 0), ("dense", [10], DENSE)]


def test_summary_is_the_default(cnn: str, capsys) -> None:
    assert main(["compile", cnn]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith('Model "cnn"')
    assert f"Trainable params: {CONV + DENSE:,} " in out


def test_output_goes_to_a_file_with_o(cnn: str, tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "out" / "cnn.json"
    out_file.parent.mkdir()
    assert main(["compile", cnn, "--emit", "ir", "-o", str(out_file)]) == EXIT_OK
    assert capsys.readouterr().out == ""
    assert json.loads(out_file.read_text())["params"] == CONV + DENSE


def test_an_invalid_spec_prints_its_errors_to_stderr_and_exits_1(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.dl"
    path.write_text(CNN.replace("flatten\n", ""))
    assert main(["compile", str(path), "--emit", "ir"]) == EXIT_ERRORS
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:3:1: error[E401]: " in err


def test_a_missing_spec_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["compile", str(tmp_path / "nowhere.dl")]) == EXIT_USAGE
    assert "no such spec file" in capsys.readouterr().err


def test_an_unknown_emit_is_a_usage_error(cnn: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["compile", cnn, "--emit", "onnx"])
    assert exit_.value.code == EXIT_USAGE
