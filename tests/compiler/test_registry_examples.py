"""Every registry entry's `example` checks clean in a minimal context: the examples are what
`dlc explain`, the docs and error hints show users, so each must be a valid spec line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlc.compiler import registry as reg
from dlc.compiler.check import check_text

WITH_EXAMPLES = ("layer", "loss", "optimizer", "schedule", "metric", "dataset", "statement")
# Data and an output that each kind of loss fits.
LOSS_CONTEXT = {
    "categorical": ("data digits", "dense 10 softmax"),
    "binary": ("data breast_cancer", "dense 1 sigmoid"),
    "regression": ('data "houses.csv" target="price"', "dense 1"),
}


def entries(*tables: str) -> list[reg.Entry]:
    return [entry for table in tables for entry in reg.TABLES[table]]


def ids(entry: reg.Entry) -> str:
    return entry.name


def diagnostics(text: str, base_dir: Path | None = None) -> list[tuple[int, str, str]]:
    return [(d.span.line, d.code, d.message) for d in check_text(text, "example.dl", base_dir)[1]]


def classifier_with(statement: str, classes: int = 10, binary: bool = False) -> str:
    """A valid classifier spec where `statement` replaces the statement of its keyword, or is added
    (`binary`: of two classes, one sigmoid unit)."""
    base = ["data digits val=0.1", "flatten", f"dense {classes} softmax", "loss categorical_crossentropy",
            "optimizer adam", "metrics accuracy"]
    if binary:
        base = ["data breast_cancer val=0.1", "dense 1 sigmoid", "loss binary_crossentropy", "optimizer adam",
                "metrics accuracy"]
    keyword = statement.split()[0]
    lines = [statement if line.split()[0] == keyword else line for line in base]
    return "\n".join(lines if statement in lines else lines + [statement])


@pytest.mark.parametrize("table", WITH_EXAMPLES)
def test_entries_have_examples(table: str) -> None:
    assert [e.name for e in reg.TABLES[table] if not e.example] == []


@pytest.mark.parametrize("layer", entries("layer"), ids=ids)
def test_layer_example_checks_clean_on_flat_sequence_or_image_input(layer: reg.Layer) -> None:
    found = {shape: diagnostics(f"input {shape}\n{layer.example}\nloss mse\noptimizer adam")
             for shape in ("64", "8x8", "8x8x1")}
    assert [] in found.values(), found


@pytest.mark.parametrize("entry", entries("statement", "optimizer", "schedule", "metric"), ids=ids)
def test_setting_example_checks_clean_in_a_classifier(entry: reg.Entry, data_dir: Path) -> None:
    """In the folder of the test data, whose `runs/base` is the run `init`'s example names."""
    binary = getattr(entry, "needs_binary", False)  # `auc`: of a binary classifier
    assert diagnostics(classifier_with(entry.example, binary=binary), data_dir) == []


@pytest.mark.parametrize("dataset", entries("dataset"), ids=ids)
def test_dataset_example_checks_clean_with_one_unit_per_class(dataset: reg.Dataset) -> None:
    assert diagnostics(classifier_with(dataset.example, dataset.classes)) == []


@pytest.mark.parametrize("loss", entries("loss"), ids=ids)
def test_loss_example_checks_clean_on_data_it_fits(loss: reg.Loss, data_dir: Path) -> None:
    data, output = LOSS_CONTEXT[loss.task]
    assert diagnostics(f"{data}\n{output}\n{loss.example}\noptimizer adam", data_dir) == []


@pytest.mark.parametrize("name", reg.names("activation"))
def test_every_activation_name_is_accepted(name: str) -> None:
    assert diagnostics(f"input 4\ndense 4 {name}\nloss mse\noptimizer adam") == []


@pytest.mark.parametrize("name", reg.names("initializer"))
def test_every_initializer_name_is_accepted(name: str) -> None:
    assert diagnostics(f"input 4\ndense 4 init={name}\nloss mse\noptimizer adam") == []
