"""The `dlc compile` summary: a row per layer with its name, output shape and parameters, the totals,
and every training setting with its defaults filled in."""

from __future__ import annotations

import re
from pathlib import Path

from dlc.compiler import registry as reg
from dlc.compiler.check import check_file, check_text
from dlc.compiler.summary import summary

MLP = Path(__file__).resolve().parents[2] / "specs" / "mlp.dl"


def cells(text: str, label: str) -> list[str]:
    """The cells after `label` in the table row or settings line that starts with it."""
    line = next(line for line in text.splitlines() if line.startswith(label + " "))
    return re.split(r"\s{2,}", line[len(label):].strip())


def test_mlp_summary_rows() -> None:
    program, diagnostics, _ = check_file(MLP)
    assert program is not None, diagnostics
    text = summary(program)
    hidden, classes = 64 * 64 + 64, 64 * 10 + 10
    assert text.startswith(f'Model "digits_mlp" ({MLP})')
    assert cells(text, "input") == ["64", "0"]
    assert cells(text, "dense 64 relu") == ["dense_1", "64", f"{hidden:,}"]
    assert cells(text, "dropout 0.5") == ["dropout_1", "64", "0"]
    assert cells(text, "dense 10 softmax") == ["dense_3", "10", f"{classes:,}"]
    total = 2 * hidden + classes
    assert f"Trainable params: {total:,} " in text
    digits = reg.lookup("dataset", "digits")
    assert cells(text, "data") == [f"digits val=0.1 test=0.2 normalize=standard shuffle=true "
                                   f"({digits.examples:,} examples, {digits.classes} classes)"]
    assert "from logits" in cells(text, "loss")[0]
    assert cells(text, "optimizer")[0].startswith("adam lr=0.001 ")
    assert cells(text, "early_stop") == ["patience=5 monitor=val_loss (min) min_delta=0 restore_best=true"]
    assert [cells(text, key) for key in ("batch", "epochs", "metrics", "seed", "schedule")] == \
        [["32"], ["100"], ["accuracy"], ["0"], ["constant"]]


def test_blocks_are_indented_under_their_layer() -> None:
    program, _ = check_text("input 8\nrepeat 2 { dense 8 relu }\nloss mse\noptimizer sgd", "blocks.dl")
    lines = summary(program).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("repeat ×2"))
    assert lines[first + 1].startswith("  dense 8 relu") and lines[first + 2].startswith("  dense 8 relu")


def test_unknown_input_leaves_the_totals_unknown() -> None:
    program, _ = check_text("dense 8 relu\nloss mse\noptimizer sgd", "open.dl")
    text = summary(program)
    assert "Trainable params: unknown until the input shape is known" in text
    assert cells(text, "dense 8 relu") == ["dense_1", "?", "?"]
    assert cells(text, "data") == ["none: arrays come through the Python API"]
