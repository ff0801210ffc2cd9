"""Sweeps in the checker (`dlc/compiler/sweeps.py`): the members are the product of the lists in source
order, the last varying fastest; each member is the IR of the spec written with its values; an error
is reported once, at the value that causes it; members that differ only in shape-free values form one
group; a sweep past the member cap is one error. And a sweep is refused, in one line, wherever one
program would be trained or written out in its place.

The rendering of a sweep's errors is held to `tests/golden/sweeps/`; rewrite it on purpose with
`DLC_UPDATE_GOLDENS=1`, as the code goldens."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest

from dlc.cli import EXIT_ERRORS, main
from dlc.compiler import registry as reg
from dlc.compiler import sweeps
from dlc.compiler.check import check_text
from dlc.compiler.diagnostics import render_text
from dlc.compiler.summary import summary

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "sweeps"
UPDATE = os.environ.get("DLC_UPDATE_GOLDENS") == "1"

GRID = """data iris val=0.2 normalize=standard
dense 16 relu
dropout [0.1, 0.25]
dense 3 softmax
loss categorical_crossentropy
optimizer sgd lr=[0.01, 1e-1] momentum=[0.0, 0.9]
seed [0, 1, 2]
metrics accuracy
"""

WIDTHS = """data iris val=0.2
dense [16, 32] relu
dense 3 softmax
loss categorical_crossentropy
optimizer adam lr=[1e-3, 1e-2]
"""

LIST = re.compile(r"\[([^\]]*)\]")


def checked(text: str):
    program, diagnostics = check_text(text)
    assert program is not None, render_text(diagnostics, {"<spec>": text})
    return program


def written_out(text: str) -> list[str]:
    """Each member's spec written by hand: every list replaced by one of its elements, in product order."""
    lists = [[item.strip() for item in match.group(1).split(",")] for match in LIST.finditer(text)]
    pieces = LIST.split(text)[::2]  # the text around the lists (split also yields each list's inside)
    return ["".join(piece + value for piece, value in zip(pieces, (*choice, ""), strict=True))
            for choice in itertools.product(*lists)]


def test_members_are_the_product_in_source_order_the_last_list_fastest() -> None:
    sweep = checked(GRID).sweep
    assert [(a.name, a.values, a.line) for a in sweep.axes] == [
        ("dropout_1.rate", (0.1, 0.25), 3), ("lr", (0.01, 0.1), 6), ("momentum", (0.0, 0.9), 6),
        ("seed", (0, 1, 2), 7)]
    assert len(sweep.members) == 24
    assert sweep.labels[:4] == ("dropout_1.rate=0.1,lr=0.01,momentum=0.0,seed=0",
                                "dropout_1.rate=0.1,lr=0.01,momentum=0.0,seed=1",
                                "dropout_1.rate=0.1,lr=0.01,momentum=0.0,seed=2",
                                "dropout_1.rate=0.1,lr=0.01,momentum=0.9,seed=0")
    assert sweep.labels[-1] == "dropout_1.rate=0.25,lr=1e-1,momentum=0.9,seed=2"  # values as written
    assert [(m.layers[1].args["rate"], m.optimizer.args["lr"], m.optimizer.args["momentum"], m.seed)
            for m in sweep.members] == list(itertools.product((0.1, 0.25), (0.01, 0.1), (0.0, 0.9), (0, 1, 2)))


@pytest.mark.parametrize("text", [GRID, WIDTHS, "input 8\nrepeat [1, 2] { dense 4 relu; dropout [0.0, 0.5] }\n"
                                               "dense [1, 2]\nloss mse\noptimizer adamw weight_decay=[0, 1e-2]\n"
                                               "schedule cosine alpha=[0.0, 0.5]\nbatch [8, 16]\nepochs [1, 3]"])
def test_each_member_is_the_ir_of_the_spec_written_with_its_values(text: str) -> None:
    program = checked(text)
    hand = written_out(text)
    assert len(hand) == len(program.sweep.members)
    for member, member_text in zip(program.sweep.members, hand, strict=True):
        assert member.sweep is None
        alone = checked(member_text)
        assert alone.sweep is None
        assert member == alone, member_text  # its source too: the spec a member's run folder keeps
        assert member.to_json() == alone.to_json()


def test_the_program_of_a_sweep_is_its_first_member_carrying_the_sweep() -> None:
    program = checked(GRID)
    assert program.to_json() | {"sweep": None} == program.sweep.members[0].to_json()
    assert program.source == GRID and program.sweep.members[-1].source == written_out(GRID)[-1]
    assert program.params == program.sweep.members[0].params == 131


def test_members_that_differ_only_in_shape_free_values_are_one_group() -> None:
    assert checked(GRID).sweep.groups == (tuple(range(24)),)
    assert checked(WIDTHS).sweep.groups == ((0, 1), (2, 3))  # the widths: two programs, each over lr
    assert checked("input 4\ndense 2\nloss mse\noptimizer [adam, adamw]\nbatch [4, 8]").sweep.groups == \
        ((0,), (1,), (2,), (3,))


def test_which_values_are_shape_free_is_the_registrys_word() -> None:
    free = {(entry.name, p.name) for table in ("optimizer", "schedule", "layer", "statement")
            for entry in reg.TABLES[table] for p in entry.params if p.shape_free}
    assert {("sgd", "lr"), ("sgd", "momentum"), ("adam", "b1"), ("adam", "b2"), ("adam", "eps"),
            ("adamw", "weight_decay"), ("optimizer", "clip"), ("dropout", "rate"), ("seed", "value"),
            ("cosine", "alpha")} <= free
    assert not {("dense", "units"), ("batch", "size"), ("data", "val"), ("sgd", "nesterov"),
                ("batchnorm", "momentum")} & free


def test_axis_names_labels_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("a b.csv", "a/b.csv"):
        (tmp_path / name).write_text("rooms,area,price\n3,120,250000\n2,80,180000\n", encoding="utf-8")
    program, diagnostics = check_text('data ["a b.csv", "a/b.csv"] target="price"\nrepeat 2 { dense [4, 8] name=h }\n'
                                      "dense 1 [linear, relu]\nloss mse\noptimizer adam\nseed [0, 0]", base_dir=tmp_path)
    assert program is not None, diagnostics
    sweep = program.sweep
    assert [a.name for a in sweep.axes] == ["data", "h_1.units", "dense_3.activation", "seed"]
    assert sweep.labels[:3] == ("data=a_b.csv,h_1.units=4,dense_3.activation=linear,seed=0",
                                "data=a_b.csv,h_1.units=4,dense_3.activation=linear,seed=0~2",
                                "data=a_b.csv,h_1.units=4,dense_3.activation=relu,seed=0")
    assert sweep.labels[8] == "data=a_b.csv,h_1.units=4,dense_3.activation=linear,seed=0~3"
    assert len(set(sweep.labels)) == len(sweep.labels) == 16
    assert [m.data.path for m in sweep.members[::8]] == [str(tmp_path / "a b.csv"), str(tmp_path / "a/b.csv")]


def test_two_axes_of_one_name_are_told_apart() -> None:
    sweep = checked("input 4\nbatchnorm momentum=[0.9, 0.99]\ndense 3 softmax\nloss categorical_crossentropy\n"
                    "optimizer rmsprop momentum=[0.0, 0.5]\nmetrics [accuracy, mse] [mae]").sweep
    assert [a.name for a in sweep.axes] == ["batchnorm_1.momentum", "momentum", "metrics", "metrics_2"]
    assert len(sweep.groups) == 4  # batchnorm's momentum and the metrics are constants of the program


def test_an_error_is_reported_once_at_the_value_that_causes_it() -> None:
    text = ("input 8\ndense 8 relu\ndropout [0.1, 1.5, 2.0]\nconv2d 4 3\ndense 1\nloss mse\n"
            "optimizer adam lr=[1e-3, -1] b1=[0.9, 0.95]\nseed [0, 1]")
    program, diagnostics = check_text(text)
    assert program is None
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics if d.is_error] == [
        ("E301", 3, 15), ("E301", 3, 20), ("E400", 4, 1), ("E301", 7, 26)]


def test_an_empty_list_is_one_error_and_blames_nothing_after_it() -> None:
    _, diagnostics = check_text("input 64\ndense [] relu\nconv2d 4 3\ndense 7 softmax\n"
                                "loss categorical_crossentropy\noptimizer adam lr=[1e-3, 1e-2]")
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics] == [("E306", 2, 7)]


def test_errors_of_a_sweep_render_as_golden(data_dir: Path) -> None:
    text = (GOLDEN / "member_errors.dl").read_text(encoding="utf-8")
    _, diagnostics = check_text(text, "member_errors.dl", data_dir)
    rendered = render_text(diagnostics, {"member_errors.dl": text})
    golden = GOLDEN / "member_errors.txt"
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


def test_more_members_than_the_cap_is_one_error_at_the_list_that_passes_it() -> None:
    lists = "\n".join(f"dense [{', '.join(str(k) for k in range(1, 11))}]" for _ in range(10))  # 10^10 members
    _, diagnostics = check_text(f"input 4\n{lists}\ndense 1\nloss mse\noptimizer adam")
    assert [(d.code, d.span.line) for d in diagnostics] == [("E311", 5)]  # 10^4 > 1,024 at the fourth list
    assert "10,000,000,000 members (10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10)" in diagnostics[0].message
    at_the_cap = "input 4\n" + "\n".join(["dense [1, 2, 3, 4]"] * 5) + "\ndense 1\nloss mse\noptimizer adam"
    assert len(checked(at_the_cap).sweep.members) == sweeps.MAX_MEMBERS


def test_the_diagnostics_of_many_members_stop_at_the_cap() -> None:
    bad = "\n".join(f"dense [{k}, 0]" for k in range(1, 61))  # 60 bad values, 2^60 members: over the cap
    _, diagnostics = check_text(f"input 4\n{bad}")
    assert [d.code for d in diagnostics] == ["E311"] + ["W101", "W102"]  # only the first member: no zero in it
    one_each = f"dropout [{', '.join(f'{k}.5' for k in range(1, 61))}]"  # 60 members, one bad value each
    _, diagnostics = check_text(f"input 4\n{one_each}\ndense 1\nloss mse\noptimizer adam")
    assert [d.code for d in diagnostics] == ["E301"] * 50 + ["E101"]
    assert diagnostics[-1].message == "too many errors; stopped after 50"


def test_ir_json_and_summary_show_the_sweep() -> None:
    program = checked(GRID)
    as_json = json.loads(json.dumps(program.to_json()))
    assert as_json["sweep"] == {
        "axes": [{"name": "dropout_1.rate", "values": [0.1, 0.25], "line": 3},
                 {"name": "lr", "values": [0.01, 0.1], "line": 6},
                 {"name": "momentum", "values": [0.0, 0.9], "line": 6},
                 {"name": "seed", "values": [0, 1, 2], "line": 7}],
        "members": 24, "labels": list(program.sweep.labels), "groups": [list(range(24))]}
    assert checked("input 4\ndense 1\nloss mse\noptimizer adam").to_json()["sweep"] is None
    assert ("sweep      dropout_1.rate [0.1, 0.25] × lr [0.01, 0.1] × momentum [0, 0.9] × seed [0, 1, 2]: "
            "24 members in 1 program (shown: the first, dropout_1.rate=0.1,lr=0.01,momentum=0.0,seed=0)") \
        in summary(program)
    assert "2 programs" in summary(checked(WIDTHS))


# --- refused where one program would stand in for the sweep -------------------------------------


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    path = tmp_path / "grid.dl"
    path.write_text(GRID, encoding="utf-8")
    return path


REFUSAL = "dlc: error: this spec is a sweep of 24 members (axes dropout_1.rate, lr, momentum, seed): "


def test_dlc_run_trains_a_sweep_into_a_run_folder_per_member(grid_file: Path, capsys) -> None:
    """tests/cli/test_cli_sweep.py holds the folders, sweep.csv and the ranking to their contract."""
    assert main(["run", str(grid_file), "--out", str(grid_file.parent / "run"), "--epochs", "1"]) == 0
    assert "24 members, 24 trained, ranked by val_loss:" in capsys.readouterr().out
    assert len(list((grid_file.parent / "run").glob("*/metrics.json"))) == 24


@pytest.mark.parametrize("emit", ["py", "hlo"])
def test_emitting_one_program_refuses_a_sweep(grid_file: Path, emit: str, capsys) -> None:
    assert main(["compile", str(grid_file), "--emit", emit]) == EXIT_ERRORS
    assert capsys.readouterr() == ("", REFUSAL + f"`--emit {emit}` writes one program, not a sweep\n")


@pytest.mark.parametrize("emit", ["summary", "ir"])
def test_check_and_compile_answer_for_a_sweep(grid_file: Path, emit: str, capsys) -> None:
    assert main(["check", str(grid_file)]) == 0
    assert main(["compile", str(grid_file), "--emit", emit]) == 0
    assert "24" in capsys.readouterr().out
