"""`init "RUN_DIR"` and `trainable=`, as the checker sees them: the run's spec.dl read (never its
weights) and its layers matched by name, kind and shapes; errors where the contract puts them; a run
folder from elsewhere (a link, a huge or broken spec, a pipe) one clear error; parameter counts
split into trainable and frozen in the IR and the summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlc.compiler.check import check_text
from dlc.compiler.summary import summary

# The run of the v2 contract's cases (contract-v2/base_spec.dl): conv2d_1, dense_1 and dense_2.
BASE = """model base
data digits val=0.2
input 8x8x1
conv2d 8 3 relu
flatten
dense 32 relu
dense 10 softmax
loss categorical_crossentropy
optimizer adam lr=1e-3
epochs 1
"""
# The contract's cases, from a folder beside `data/`: the errors belong on the lines marked `# error`.
FREEZE = """data digits val=0.2
input 8x8x1
init "../data/base_run"
conv2d 8 3 relu trainable=false
flatten
dense 32 relu trainable=false
dense 10 softmax name=head
loss categorical_crossentropy
optimizer adam lr=1e-3
"""
NOT_A_RUN = """data digits
input 8x8x1
init "../data"   # error
conv2d 8 3 relu
flatten
dense 10 softmax
loss categorical_crossentropy
optimizer adam
"""
SHAPES = """data digits val=0.2
input 8x8x1
init "../data/base_run"
conv2d 16 3 relu   # error
flatten
dense 10 softmax name=head
loss categorical_crossentropy
optimizer adam
"""


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    """A folder `cases/` beside `data/base_run/`, a run folder holding the base spec (the checker reads
    nothing else of it)."""
    (tmp_path / "data" / "base_run").mkdir(parents=True)
    (tmp_path / "data" / "base_run" / "spec.dl").write_text(BASE)
    (tmp_path / "cases").mkdir()
    return tmp_path / "cases"


def check(text: str, folder: Path):
    return check_text(text, "case.dl", folder)


def error_lines(text: str, folder: Path) -> dict[int, str]:
    return {d.span.line: f"{d.code}: {d.message}" for d in check(text, folder)[1] if d.is_error}


def marked(text: str) -> set[int]:
    return {number for number, line in enumerate(text.splitlines(), 1) if "# error" in line}


@pytest.mark.parametrize("text", [NOT_A_RUN, SHAPES], ids=["not_a_run", "shapes"])
def test_errors_land_on_the_contracts_lines(cases: Path, text: str) -> None:
    assert set(error_lines(text, cases)) == marked(text), error_lines(text, cases)


def test_the_shapes_error_shows_both_shapes(cases: Path) -> None:
    (message,) = error_lines(SHAPES, cases).values()
    assert "kernel 3x3x1x16" in message and "kernel 3x3x1x8" in message


def test_matching_layers_come_from_the_run_and_the_rest_start_fresh(cases: Path) -> None:
    program, diagnostics = check(FREEZE, cases)
    assert program is not None, diagnostics
    assert {layer.name: layer.init for layer in program.layers} == {
        "conv2d_1": "run", "flatten_1": "fresh", "dense_1": "run", "head": "fresh"}
    assert program.init.path == str((cases.parent / "data" / "base_run").resolve())
    assert (program.params, program.frozen_params) == (32 * 10 + 10, 3 * 3 * 8 + 8 + 288 * 32 + 32)
    layers = {layer["name"]: layer for layer in program.to_json()["layers"]}
    assert (layers["dense_1"]["init"], layers["dense_1"]["params"], layers["dense_1"]["frozen_params"]) == \
        ("run", 0, 288 * 32 + 32)
    assert program.to_json()["init"]["path"] == program.init.path
    rows = {line.split()[0] + " " + line.split()[1]: line for line in summary(program).splitlines() if "   " in line}
    assert rows["conv2d 8"].endswith("from run, frozen") and rows["dense 10"].endswith("fresh")
    assert "Frozen params: 9,328" in summary(program) and "Trainable params: 330 " in summary(program)


def test_no_layer_of_the_runs_names_is_one_error_at_init(cases: Path) -> None:
    text = FREEZE.replace("conv2d 8 3 relu trainable=false", "conv2d 8 3 relu name=features") \
        .replace("dense 32 relu trainable=false", "dense 32 relu name=hidden")
    assert error_lines(text, cases) == {3: error_lines(text, cases)[3]}
    assert error_lines(text, cases)[3].startswith("E702")


def test_strict_makes_a_fresh_layer_an_error_at_it(cases: Path) -> None:
    text = FREEZE.replace('init "../data/base_run"', 'init "../data/base_run" strict=true')
    assert {line: message[:4] for line, message in error_lines(text, cases).items()} == {7: "E704"}
    assert check(text.replace("name=head", ""), cases)[0] is not None  # dense_2 comes from the run too


def test_a_repeat_statement_gets_one_error_for_its_copies(cases: Path) -> None:
    text = FREEZE.replace("dense 32 relu trainable=false", "repeat 2 { dense 7 relu name=dense }")
    assert [message[:4] for message in error_lines(text, cases).values()] == ["E703"]


@pytest.mark.parametrize(("make", "problem"), [
    (lambda run: (run / "spec.dl").unlink() or (run / "spec.dl").symlink_to(run / "other.dl"), "symbolic link"),
    (lambda run: (run / "spec.dl").write_bytes(b"# x\n" * 300_000), "over 1,048,576 bytes"),
    (lambda run: (run / "spec.dl").write_bytes(b"model caf\xe9\n"), "not UTF-8"),
    (lambda run: (run / "spec.dl").write_text("input 64\ndense 8 rleu\n"), "error at line 2"),
    (lambda run: (run / "spec.dl").write_text("dense 8 relu\nloss mse\noptimizer adam\n"), "input shape unknown"),
    (lambda run: (run / "spec.dl").unlink() or (run / "spec.dl").mkdir(), "not a file"),
    (lambda run: (run / "spec.dl").unlink() or os.mkfifo(run / "spec.dl"), "not a file"),
])
def test_a_run_folder_from_elsewhere_is_one_clear_error(cases: Path, make, problem: str) -> None:
    run = cases.parent / "data" / "base_run"
    (run / "other.dl").write_text(BASE)
    make(run)
    errors = error_lines(FREEZE, cases)
    assert list(errors) == [3] and errors[3].startswith("E701") and problem in errors[3], errors


def test_not_a_folder_and_missing_are_e700(cases: Path) -> None:
    (cases.parent / "data" / "file.dl").write_text(BASE)
    for path in ("../data/file.dl", "../data/nowhere"):
        errors = error_lines(FREEZE.replace("../data/base_run", path), cases)
        assert list(errors) == [3] and errors[3].startswith("E700"), errors


def test_runs_that_name_each_other_are_read_one_deep(cases: Path) -> None:
    run = cases.parent / "data" / "base_run"
    (run / "spec.dl").write_text(BASE.replace("model base", 'model base\ninit "."'))
    assert check(FREEZE, cases)[0] is not None


def test_the_runs_data_paths_start_where_its_run_json_says(cases: Path, tmp_path: Path) -> None:
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    run = cases.parent / "data" / "base_run"
    (run / "spec.dl").write_text('data "d.csv" target="y"\ndense 4 relu\ndense 2 softmax\n'
                                 "loss categorical_crossentropy\noptimizer adam\n")
    spec = 'data "../origin/d.csv" target="y"\ninit "../data/base_run"\ndense 4 relu\ndense 2 softmax\n' \
           "loss categorical_crossentropy\noptimizer adam\n"
    assert error_lines(spec, cases)[2].startswith("E701")  # d.csv is not in the run folder
    (run / "run.json").write_text(json.dumps({"spec_dir": str(tmp_path / "origin")}))
    program, diagnostics = check(spec, cases)
    assert program is not None and [layer.init for layer in program.layers] == ["run", "run"], diagnostics
    (run / "run.json").write_text("[" * 100_000)
    assert error_lines(spec, cases)[2].startswith("E701")


def test_counts_split_into_trainable_and_frozen() -> None:
    program, _ = check_text("input 4\nrepeat 2 trainable=false { dense 4 relu; dropout 0.1 }\nbatchnorm\n"
                            "dense 2 trainable=false\ndense 1\nloss mse\noptimizer adam")
    assert (program.params, program.frozen_params) == (2 * 4 + 2 * 1 + 1, 2 * 20 + 4 * 2 + 2)
    block = program.layers[0]
    assert (block.params, block.frozen_params) == (0, 40) and all(layer.frozen for layer in block.body)
    assert "Frozen params: 50" in summary(program)
    plain, _ = check_text("input 4\ndense 1\nloss mse\noptimizer adam")
    assert plain.frozen_params == 0 and "Start" not in summary(plain) and "Frozen" not in summary(plain)
