"""The checked IR: names resolved, defaults filled, shapes and parameter counts inferred, and the
facts of the data learned without loading it. Later stages trust all of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text

CLASSIFIER_END = "dense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n"


def checked(text: str, base_dir: Path | None = None) -> ir.Program:
    program, diagnostics = check_text(text, "spec.dl", base_dir)
    assert program is not None, [(d.code, d.message) for d in diagnostics]
    return program


def defaults(entry: reg.Entry) -> dict:
    return {p.name: p.default for p in entry.options}


def test_settings_left_out_get_the_languages_defaults() -> None:
    program = checked("input 4\n" + CLASSIFIER_END)
    assert program.name == "spec"  # the file's stem
    assert (program.batch, program.epochs, program.seed) == (32, 10, 0)
    assert program.schedule == ir.Named("constant")
    assert program.early_stop is None
    assert program.metrics == ()
    assert program.data is None


def test_options_left_out_get_their_registry_defaults() -> None:
    program = checked("input 4\ndense 3 softmax\nloss huber\noptimizer adam lr=0.01\nschedule cosine")
    adam = reg.lookup("optimizer", "adam")
    assert program.optimizer == ir.Named("adam", {**defaults(adam), "lr": 0.01, "clip": None})
    assert program.loss == ir.Named("huber", defaults(reg.lookup("loss", "huber")))
    assert program.schedule == ir.Named("cosine", defaults(reg.lookup("schedule", "cosine")))
    dense = program.layers[0]
    assert dense.args == {"units": 3, "activation": "softmax", **defaults(reg.layer("dense")), "trainable": True}


def test_aliases_resolve_to_their_entry() -> None:
    program = checked("input 4\ndense 3 swish\ndense 3\nloss sparse_categorical_crossentropy\noptimizer adam")
    assert program.layers[0].args["activation"] == "silu"
    assert program.loss.name == "categorical_crossentropy"


def test_shapes_and_parameters_per_layer_of_a_cnn() -> None:
    program = checked("input 8x8x1\n"
                      "conv2d 16 3x3 relu padding=same\n"  # 8x8x16
                      "maxpool2d 2\n"                      # 4x4x16
                      "conv2d 8 3 stride=2\n"              # (4 - 3) // 2 + 1 = 1: 1x1x8
                      "batchnorm\n"
                      "flatten\n"
                      "dense 10 softmax\n"
                      "loss categorical_crossentropy\noptimizer adam")
    rows = [(layer.kind, layer.output_shape, layer.params) for layer in program.layers]
    assert rows == [
        ("conv2d", (8, 8, 16), 3 * 3 * 1 * 16 + 16),
        ("maxpool2d", (4, 4, 16), 0),
        ("conv2d", (1, 1, 8), 3 * 3 * 16 * 8 + 8),
        ("batchnorm", (1, 1, 8), 2 * 8),
        ("flatten", (8,), 0),
        ("dense", (10,), 8 * 10 + 10),
    ]
    assert program.input_shape == (8, 8, 1)
    assert program.output_shape == (10,)
    assert program.params == sum(params for _, _, params in rows)


@pytest.mark.parametrize(("layer", "output"), [
    ("avgpool2d 3 stride=2", (3, 3, 2)),           # (8 - 3) // 2 + 1
    ("avgpool2d 3 stride=2 padding=same", (4, 4, 2)),  # ceil(8 / 2)
    ("maxpool2d 2x4", (4, 2, 2)),
    ("conv2d 5 3x1 stride=1x2", (6, 4, 5)),       # (8 - 3) + 1, (8 - 1) // 2 + 1
    ("conv2d 5 5 padding=same stride=3", (3, 3, 5)),
])
def test_windows_follow_stride_and_padding(layer: str, output: tuple[int, ...]) -> None:
    program = checked(f"input 8x8x2\n{layer}\nloss mse\noptimizer adam")
    assert program.output_shape == output


def test_repeat_holds_every_iterations_layers_through_a_nested_residual() -> None:
    program = checked("input 16\nrepeat 2 { residual { dense 16 relu; layernorm }; dropout 0.1 }\n" + CLASSIFIER_END)
    repeat = program.layers[0]
    block = 16 * 16 + 16 + 2 * 16
    assert [layer.kind for layer in repeat.body] == ["residual", "dropout"] * 2
    assert [layer.kind for layer in repeat.body[0].body] == ["dense", "layernorm"]
    assert (repeat.output_shape, repeat.params) == ((16,), 2 * block)
    assert program.params == 2 * block + 16 * 3 + 3


@pytest.mark.parametrize(("layers", "loss", "activation", "from_logits"), [
    ("dense 3 softmax", "categorical_crossentropy", "softmax", True),
    ("dense 3 softmax\ndropout 0.2", "categorical_crossentropy", "softmax", True),
    ("dense 3\nactivation softmax", "categorical_crossentropy", "softmax", True),
    ("dense 3", "categorical_crossentropy", "linear", True),
    ("dense 1 sigmoid", "binary_crossentropy", "sigmoid", True),
    ("repeat 2 { dense 3 sigmoid }", "binary_crossentropy", "sigmoid", True),
    ("residual { dense 4 tanh }", "mse", "linear", False),
    ("dense 1 relu", "mse", "relu", False),
])
def test_output_activation_and_from_logits(layers: str, loss: str, activation: str, from_logits: bool) -> None:
    program = checked(f"input 4\n{layers}\nloss {loss}\noptimizer adam")
    assert (program.output_activation, program.from_logits) == (activation, from_logits)


@pytest.mark.parametrize(("monitor", "mode"), [
    ("val_accuracy", "max"), ("accuracy", "max"), ("val_loss", "min"), ("loss", "min"), ("val_mae", "min"),
])
def test_early_stop_mode_follows_the_monitored_quantity(monitor: str, mode: str) -> None:
    program = checked(f"data iris val=0.2\n{CLASSIFIER_END}metrics accuracy mae\nearly_stop 4 monitor={monitor}")
    assert program.early_stop == ir.EarlyStop(4, monitor, 0.0, True, mode)


def test_early_stop_defaults() -> None:
    stop = checked(f"data iris val=0.2\n{CLASSIFIER_END}early_stop 4").early_stop
    assert (stop.monitor, stop.min_delta, stop.restore_best, stop.mode) == ("val_loss", 0.0, True, "min")


def test_builtin_data_facts_come_from_the_registry() -> None:
    program = checked(f"data iris val=0.2 normalize=standard\n{CLASSIFIER_END}")
    iris = reg.lookup("dataset", "iris")
    assert program.data == ir.Data("builtin", "iris", None, 0.2, 0.0, "standard", True, None, iris.features,
                                   "classification", iris.classes, None, True, False, iris.examples)
    assert program.input_shape == iris.features


def test_input_reshapes_builtin_examples() -> None:
    program = checked("data digits\ninput 8x8x1\nflatten\ndense 10 softmax\nloss categorical_crossentropy\n"
                      "optimizer adam")
    assert program.input_shape == (8, 8, 1)
    assert program.data.features == (64,)


def test_csv_facts_come_from_its_header(data_dir: Path) -> None:
    program = checked('data "houses.csv" target="price" test=0.25\ndense 1\nloss mse\noptimizer adam', data_dir)
    d = program.data
    assert (d.source, d.name, d.path, d.target) == ("csv", "houses.csv", str(data_dir / "houses.csv"), "price")
    assert (d.features, d.target_width, d.task, d.has_val, d.has_test) == ((2,), 1, "unknown", False, True)
    assert program.params == 2 + 1


def test_npz_facts_come_from_its_array_headers(data_dir: Path) -> None:
    d = checked(f'data "classes.npz"\n{CLASSIFIER_END}early_stop 2', data_dir).data
    assert (d.source, d.features, d.task, d.has_val, d.has_test) == ("npz", (4,), "classification", True, False)


def test_multilabel_npz(data_dir: Path) -> None:
    program = checked('data "multilabel.npz"\ndense 5 sigmoid\nloss binary_crossentropy\noptimizer adam', data_dir)
    assert (program.data.task, program.data.target_width) == ("multilabel", 5)


def test_model_name_and_json_form() -> None:
    program = checked("model tiny\ninput 4\n" + CLASSIFIER_END)
    assert program.name == "tiny"
    as_json = json.loads(json.dumps(program.to_json()))
    assert next(iter(as_json)) == "params"
    assert as_json["params"] == 4 * 3 + 3
    assert [(x["kind"], x["output_shape"], x["params"]) for x in as_json["layers"]] == [("dense", [3], 15)]


def test_unknown_input_shape_leaves_shapes_and_params_unknown() -> None:
    program = checked("dense 8 relu\n" + CLASSIFIER_END)
    assert program.params is None
    assert [layer.output_shape for layer in program.layers] == [None, None]
