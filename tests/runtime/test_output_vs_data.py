"""The output-against-data rules hold wherever data arrives: a CSV, an NPZ or arrays given to
`fit` are checked, once loaded, as a built-in dataset is checked statically. A mismatch is a
`SpecError` pointing at the last layer, with the static check's code, before anything trains."""

from __future__ import annotations

import numpy as np
import pytest

import dlc
from dlc.cli import main

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4)).astype(np.float32)
Y = np.arange(30) % 3
NAMES = np.array(["cat", "dog", "emu"])[Y]
END = "loss {loss}\noptimizer adam\nepochs 1\n"


def codes(error: dlc.SpecError) -> list[tuple[int, str]]:
    return [(d.span.line, d.code) for d in error.diagnostics if d.is_error]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("outputs")
    (root / "animals.csv").write_text("a,b,c,d,kind\n" + "".join(
        f"{','.join(f'{v:.4f}' for v in row)},{name}\n" for row, name in zip(X, NAMES, strict=True)))
    np.savez(root / "whole.npz", x=X, y=Y.astype(np.float64))  # whole floats are class labels
    np.savez(root / "ints.npz", x=X, y=Y)
    return {"csv": f'data "{root / "animals.csv"}" target="kind"', "npz": f'data "{root / "ints.npz"}"',
            "floats": f'data "{root / "whole.npz"}"'}


@pytest.mark.parametrize("source", ["csv", "npz", "floats"])
def test_more_softmax_units_than_classes_in_a_file_is_e501(files, source):
    program = dlc.compile(f"{files[source]}\ndense 6 softmax\n" + END.format(loss="categorical_crossentropy"))
    with pytest.raises(dlc.SpecError) as caught:
        program.fit()
    assert codes(caught.value) == [(2, "E501")]
    assert "has 3 classes" in str(caught.value) and "dense 3 softmax" in str(caught.value)


@pytest.mark.parametrize("labels", [Y, NAMES, Y.astype(np.float32)], ids=["ints", "names", "whole floats"])
def test_more_softmax_units_than_classes_in_arrays_is_e501(labels):
    program = dlc.compile("dense 8 relu\ndense 4 softmax\n" + END.format(loss="categorical_crossentropy"))
    with pytest.raises(dlc.SpecError) as caught:
        program.fit(X, labels)
    assert codes(caught.value) == [(2, "E501")]
    assert "`y` has 3 classes" in str(caught.value)


def test_validation_labels_count_as_classes():
    """A class only the validation part holds is still a class the output needs a unit for."""
    program = dlc.compile("dense 3 softmax\n" + END.format(loss="categorical_crossentropy"))
    with pytest.raises(dlc.SpecError, match="has 4 classes"):
        program.fit(X, Y, validation_data=(X[:2], np.array([3, 3])))


def test_a_binary_loss_on_three_classes_in_a_file_is_e503(files):
    program = dlc.compile(f"{files['csv']}\ndense 1 sigmoid\n" + END.format(loss="binary_crossentropy"))
    with pytest.raises(dlc.SpecError) as caught:
        program.fit()
    assert codes(caught.value) == [(2, "E503")]


@pytest.mark.parametrize("source", ["csv", "floats"])
def test_matching_outputs_train(files, source):
    program = dlc.compile(f"{files[source]}\ndense 3 softmax\n" + END.format(loss="categorical_crossentropy"))
    assert len(program.fit()) == 1


def test_whole_float_labels_train_through_the_api():
    program = dlc.compile("dense 3 softmax\n" + END.format(loss="categorical_crossentropy"))
    assert len(program.fit(X, Y.astype(np.float64))) == 1
    assert program.predict(X[:2]).shape == (2, 3)


def test_dlc_run_refuses_the_mismatch_before_training(files, tmp_path, capsys):
    spec = tmp_path / "wide.dl"
    spec.write_text(f"{files['csv']}\ndense 6 softmax\n" + END.format(loss="categorical_crossentropy"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "error[E501]: the output has 6 units but" in err and "has 3 classes" in err
    assert not (tmp_path / "run").exists()  # a run that never started leaves no folder


def test_statistics_that_cannot_settle_in_a_file_run_are_a_spec_warning(files):
    """W104 needs the number of training examples: for a file, known once it is loaded."""
    spec = f"{files['csv']}\ndense 8 relu\nbatchnorm\ndense 3 softmax\n" + END.format(loss="categorical_crossentropy")
    program = dlc.compile(spec)
    assert not [d for d in program.diagnostics if d.code == "W104"]  # unknown before loading
    with pytest.warns(dlc.SpecWarning, match=r"warning\[W104\]: `batchnorm` needs about 459 training steps"):
        program.fit()
    settled = dlc.compile(spec.replace("batchnorm", "batchnorm momentum=0.1") + "batch 8\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", dlc.SpecWarning)
        settled.fit()


def test_dlc_run_prints_a_warning_found_in_the_data_with_its_source_line(files, tmp_path, capsys):
    spec = tmp_path / "bn.dl"
    spec.write_text(f"{files['csv']}\ndense 8 relu\nbatchnorm\ndense 3 softmax\n"
                    + END.format(loss="categorical_crossentropy"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"{spec}:3:1: warning[W104]" in err and " 3 | batchnorm" in err and "hint: lower `momentum=` (`momentum=0.01` settles in 1 step)" in err
