"""Rules of LANGUAGE.md that the case files cannot cover one spec at a time: output against loss
against data for every built-in dataset, which metrics and monitors each loss allows, where an
error points, and what did-you-mean offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.diagnostics import Diagnostic

DATASETS = reg.DATASETS


def diagnose(text: str, base_dir: Path | None = None) -> list[Diagnostic]:
    return check_text(text, "spec.dl", base_dir)[1]


def errors(text: str, base_dir: Path | None = None) -> list[tuple[int, str]]:
    return [(d.span.line, d.code) for d in diagnose(text, base_dir) if d.is_error]


def the_error(text: str, base_dir: Path | None = None) -> Diagnostic:
    (found,) = [d for d in diagnose(text, base_dir) if d.is_error]
    return found


def fits(dataset: reg.Dataset, output: str, loss: str) -> list[tuple[int, str]]:
    return errors(f"data {dataset.name}\ndense 8 relu\n{output}\nloss {loss}\noptimizer adam")


# --- output, loss and data, for each built-in dataset ------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_one_softmax_unit_per_class_fits(dataset: reg.Dataset) -> None:
    assert fits(dataset, f"dense {dataset.classes} softmax", "categorical_crossentropy") == []


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_a_wrong_number_of_classes_is_blamed_on_the_last_layer(dataset: reg.Dataset) -> None:
    assert fits(dataset, f"dense {dataset.classes + 1} softmax", "categorical_crossentropy") == [(3, "E501")]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_a_regression_loss_does_not_fit_class_labels(dataset: reg.Dataset) -> None:
    assert fits(dataset, "dense 1", "mse") == [(3, "E503")]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_binary_crossentropy_is_for_two_classes_with_one_unit(dataset: reg.Dataset) -> None:
    one_unit = fits(dataset, "dense 1 sigmoid", "binary_crossentropy")
    two_units = fits(dataset, "dense 2 sigmoid", "binary_crossentropy")
    if dataset.classes == 2:
        assert (one_unit, two_units) == ([], [(3, "E501")])
    else:
        assert (one_unit, two_units) == ([(3, "E503")], [(3, "E503")])


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
def test_input_may_reshape_a_dataset_only_to_as_many_values(dataset: reg.Dataset) -> None:
    (features,) = dataset.features
    end = f"flatten\ndense {dataset.classes} softmax\nloss categorical_crossentropy\noptimizer adam"
    assert errors(f"data {dataset.name}\ninput {features}x1\n{end}") == []
    assert errors(f"data {dataset.name}\ninput {features + 1}\n{end}") == [(2, "E404")]


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber"])
@pytest.mark.parametrize("layers", ["input 4\ndense 1 softmax", "input 4\ndense 1\nactivation softmax"])
def test_a_softmax_over_one_unit_is_an_error_whatever_the_loss(layers: str, loss: str) -> None:
    line = layers.count("\n") + 1
    assert errors(f"{layers}\nloss {loss}\noptimizer adam") == [(line, "E405")]
    assert errors(layers) == [(line, "E405")]  # with no loss at all
    assert errors(f"input 4\ndense 1 softmax\ndense 3\nloss {loss}\noptimizer adam") == [(2, "E405")]


@pytest.mark.parametrize(("layers", "loss"), [
    ("input 4\ndense 1 sigmoid", "categorical_crossentropy"),    # one class is no classifier
    ("input 8x8x1\nconv2d 2 3", "binary_crossentropy"),          # not flat
    ("input 8x8x1\nconv2d 2 3", "categorical_crossentropy"),
])
def test_outputs_that_no_data_could_fit_are_blamed_on_the_last_layer(layers: str, loss: str) -> None:
    assert errors(f"{layers}\nloss {loss}\noptimizer adam") == [(2, "E500")]


def test_regression_output_must_match_the_target_width(data_dir: Path) -> None:
    spec = 'data "multilabel.npz"\n{}\nloss {}\noptimizer adam'
    assert errors(spec.format("dense 5", "mse"), data_dir) == []
    assert errors(spec.format("dense 5 sigmoid", "binary_crossentropy"), data_dir) == []
    assert errors(spec.format("dense 4", "mse"), data_dir) == [(2, "E502")]
    assert errors(spec.format("dense 4 sigmoid", "binary_crossentropy"), data_dir) == [(2, "E502")]
    assert errors(spec.format("dense 5 softmax", "categorical_crossentropy"), data_dir) == [(2, "E503")]


# --- metrics and monitors ---------------------------------------------------------------------


@pytest.mark.parametrize("loss", reg.LOSSES, ids=lambda e: e.name)
def test_accuracy_needs_a_classification_loss(loss: reg.Loss) -> None:
    found = errors(f"input 4\ndense 2\nloss {loss.name}\noptimizer adam\nmetrics mae accuracy")
    assert found == ([(5, "E504")] if loss.task == "regression" else [])


def monitors(metric: str) -> list[str]:
    return [metric, f"val_{metric}"]


@pytest.mark.parametrize("monitor", ["loss", "val_loss"] + [m for e in reg.METRICS for m in monitors(e.name)])
def test_a_monitor_is_the_loss_or_a_listed_metric(monitor: str) -> None:
    spec = "data breast_cancer val=0.2\ndense 1 sigmoid\nloss binary_crossentropy\noptimizer adam\n{}" \
           f"early_stop 3 monitor={monitor}"  # a binary classifier: every metric can be listed
    listed = [e.name for e in reg.METRICS]
    assert errors(spec.format(f"metrics {' '.join(listed)}\n")) == []
    unlisted = errors(spec.format(""))
    assert unlisted == ([] if monitor.removeprefix("val_") == "loss" else [(5, "E505")])


@pytest.mark.parametrize(("data", "refused"), [
    ("data iris", True),
    ("data iris test=0.2", True),
    ("data iris val=0.1", False),
    ('data "classes.npz"', False),            # it holds x_val and y_val
    ('data "houses.csv" target="price"', True),
    ("input 4", False),                       # arrays come through `fit`, which checks then
])
def test_early_stopping_needs_validation_data_when_the_spec_names_its_data(data: str, refused: bool,
                                                                          data_dir: Path) -> None:
    codes = [code for _, code in errors(f"{data}\ndense 3\nloss mse\noptimizer adam\nearly_stop 3", data_dir)]
    assert ("E506" in codes) == refused


def test_monitoring_the_training_loss_needs_no_validation_data() -> None:
    assert errors("data iris\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n"
                  "early_stop 3 monitor=loss") == []


# --- where errors point -----------------------------------------------------------------------


def span_text(text: str, d: Diagnostic) -> str:
    return text[d.span.start:d.span.end]


@pytest.mark.parametrize(("text", "pointed"), [
    ("input 64\ndropout 1.5", "1.5"),                          # a bad value, at the value
    ("input 64\ndense 8 rleu", "rleu"),                        # an unknown name, at the name
    ("input 64\nlayer dens 8", "dens"),
    ("optimizer adam beta1=0.9", "beta1"),                     # an unknown option, at its name
    ("input 64\nconv2d 8 3", "conv2d 8 3"),                    # a shape error, at the layer
    ("input 8\nresidual { dense 4 }", "residual"),            # a residual block, at `residual`
    ("data digits\ninput 7x7", "input 7x7"),                   # an input that disagrees, at `input`
    ("input 3\ndense 1\nloss mse\nmetrics mae accuracy", "accuracy"),  # a metric, at the metric
    ("data iris\ndense 3\nloss categorical_crossentropy\nearly_stop 2", "early_stop 2"),
])
def test_an_error_points_at_the_smallest_wrong_piece(text: str, pointed: str) -> None:
    assert span_text(text, the_error(text)) == pointed


def test_a_second_setting_is_blamed_and_the_first_noted() -> None:
    text = "batch 32\ninput 4\nbatch 64"
    d = the_error(text)
    assert (d.code, span_text(text, d)) == ("E304", "batch 64")
    assert [(span_text(text, label), label.message) for label in d.labels] == [("batch 32", "first set here")]


def test_a_repeated_option_is_blamed_and_the_first_noted() -> None:
    text = "input 4\ndense 2 bias=true bias=false"
    d = the_error(text)
    assert (d.code, span_text(text, d), [span_text(text, label) for label in d.labels]) == \
        ("E305", "bias=false", ["bias=true"])


def test_a_repeated_metric_is_blamed_and_the_first_noted() -> None:
    text = "input 4\ndense 2\nloss mse\nmetrics mae mse mae"
    d = the_error(text)
    assert (d.code, d.span.col, [(label.span.col, label.message) for label in d.labels]) == \
        ("E305", 17, [(9, "first listed here")])


# --- one cause, one error ---------------------------------------------------------------------


@pytest.mark.parametrize("broken", [
    "dense 0",          # a bad value
    "dense 8 rleu",     # an unknown activation
    "dense2 8",         # an unknown layer
    "conv2d 4 3",       # a shape error
    "dense 8 @",        # a syntax error
    "dense []",         # an empty list (a sweep of no members)
])
def test_layers_after_a_broken_one_are_not_blamed(broken: str) -> None:
    # Without the broken layer, `conv2d` would need an image and the output would not fit the loss.
    text = f"input 64\n{broken}\nconv2d 4 3\ndense 7 softmax\nloss categorical_crossentropy\noptimizer adam"
    assert [line for line, _ in errors(text)] == [2]


def test_nothing_that_depends_on_broken_data_is_checked(data_dir: Path) -> None:
    for data in ('data "nowhere.csv" target="price"', 'data "houses.csv" target="prize"', "data irsi val=0.1"):
        found = errors(f"{data}\ninput 5\ndense 4\nloss mse\nmetrics accuracy\nearly_stop 3", data_dir)
        assert [line for line, _ in found] == [1, 5], data  # `accuracy` with `mse` is its own fault


def test_a_bad_escape_in_a_path_is_not_also_a_missing_file(data_dir: Path) -> None:
    assert [c for _, c in errors('data "sub\\dir.csv" target="y"', data_dir)] == ["E107"]


def test_a_target_of_the_wrong_type_is_one_error(data_dir: Path) -> None:
    assert errors('data "houses.csv" target=price\ndense 1\nloss mse', data_dir) == [(1, "E300")]


# --- did you mean ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "suggestion"), [
    ("input 4\ndense 4 rleu", "relu"),
    ("input 4\nlayer dens 4", "dense"),
    ("input 4\nflaten", "flatten"),
    ("optimiser adam", "optimizer"),
    ("early_stopping 3", "early_stop"),
    ("optimizer adm", "adam"),
    ("optimizer adam learning_rate=0.1", "lr"),
    ("optimizer adam beta1=0.9", "b1"),
    ("optimizer sgd nesterof=true", "nesterov"),
    ("loss categorical_crosentropy", "categorical_crossentropy"),
    ("schedule cosin", "cosine"),
    ("input 4\ndense 4\nloss mse\nmetrics maee", "mae"),
    ("data digts", "digits"),
    ("data digits normalise=standard", "normalize"),
    ("data digits normalize=standart", "standard"),
    ("input 4\ndense 4 init=he_norml", "he_normal"),
])
def test_a_close_known_name_is_suggested(text: str, suggestion: str) -> None:
    assert the_error(text).hint == f"did you mean `{suggestion}`?"


def test_a_name_close_to_nothing_lists_the_choices() -> None:
    hint = the_error("input 4\ndense 4 zzzz").hint
    assert hint.startswith("activations are ") and all(f"`{e.name}`" in hint for e in reg.ACTIVATIONS)


def test_an_option_of_another_optimizer_says_whose_it_is() -> None:
    hint = the_error("optimizer adam momentum=0.9").hint
    owners = [e.name for e in reg.OPTIMIZERS if e.param("momentum")]
    assert hint.startswith(f"`momentum` is an option of `{owners[0]}`")
    assert all(f"`{name}`" in hint for name in owners)


def test_an_abbreviation_suggests_the_one_name_it_starts():
    from dlc.compiler.check import check_text

    _, diagnostics = check_text("input 4\ndense 2 softmax\nloss categ\n", "s.dl")
    assert [d.hint for d in diagnostics if d.code == "E203"] == ["did you mean `categorical_crossentropy`?"]
