"""The lowering contract: what the checker promises (output shapes, parameter counts) is what the
Flax module builds, for every layer of the registry; every activation, initializer, optimizer and
schedule lowers and runs; a softmax/sigmoid output fuses into its cross-entropy without changing
the loss, and without overflowing where the naive form does.

Everything here runs eagerly or abstractly (`jax.eval_shape`): nothing is jitted, so nothing waits
for XLA to compile.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.lower import legacy_names, lower, optimizer
from dlc.runtime.train import input_dtype

KEY = jax.random.key(0)
BATCH = 2

# Minimal valid specs around each layer of the registry: image inputs for convolutions and pools,
# flat ones for dense, odd sides so that strides and `same` padding round, nested blocks.
LAYER_CASES: dict[str, tuple[str, ...]] = {
    "dense": ("input 5\ndense 3", "input 5\ndense 3 relu bias=false init=he_normal"),
    "dropout": ("input 5\ndropout 0.5\ndense 2", "input 3x3x2\ndropout 0.1"),
    "activation": ("input 5\nactivation tanh", "input 4x4x2\nactivation softmax"),
    "flatten": ("input 4x3x2\nflatten", "input 6\nflatten\ndense 2"),
    "conv2d": ("input 7x7x1\nconv2d 4 3",
               "input 7x7x2\nconv2d 4 3x2 relu stride=2 padding=same",
               "input 9x8x3\nconv2d 2 3 stride=2x1 padding=valid bias=false init=zeros"),
    "maxpool2d": ("input 7x7x2\nmaxpool2d 2",
                  "input 7x7x2\nmaxpool2d 3 stride=2 padding=same",
                  "input 6x9x1\nmaxpool2d 2x3 stride=1"),
    "avgpool2d": ("input 7x7x2\navgpool2d 2",
                  "input 7x5x2\navgpool2d 3 stride=2 padding=same",
                  "input 6x9x1\navgpool2d 3x2 stride=2x1"),
    "batchnorm": ("input 5\nbatchnorm", "input 4x4x3\nconv2d 2 3\nbatchnorm momentum=0.9 eps=1e-5"),
    "layernorm": ("input 5\nlayernorm", "input 4x4x3\nlayernorm eps=1e-3"),
    "repeat": ("input 5\nrepeat 3 { dense 5 relu; dropout 0.1 }",
               "input 6x6x1\nrepeat 2 { conv2d 2 3 relu; batchnorm }\nflatten\ndense 2",
               "input 4\nrepeat 2 { repeat 2 { dense 4 } ; residual { dense 4 tanh } }"),
    "rnn": ("input 6x3\nrnn 4", "input 6x3\nrnn 4 relu return_sequences=true bidirectional=true"),
    "lstm": ("input 6x3\nlstm 4", "input 6x3\nlstm 4 return_sequences=true\nlstm 2 bidirectional=true"),
    "gru": ("input 6x3\ngru 4 bidirectional=true", "input 6x3\ngru 4 return_sequences=true\nglobal_maxpool"),
    "embedding": ("input 7\nembedding 11 3", "input 7\nembedding 5 4\nlstm 3 return_sequences=true\nglobal_maxpool",
                  "input 9\nembedding 6 2\nconv1d 3 3 padding=same\nmaxpool1d 2\ngru 2 bidirectional=true",
                  "input 7\nembedding 5 4 l2=0.1\nrnn 3 bidirectional=true"),
    "conv1d": ("input 9x2\nconv1d 3 3", "input 9x2\nconv1d 3 2 relu stride=2 padding=same bias=false"),
    "maxpool1d": ("input 9x2\nmaxpool1d 2", "input 9x2\nmaxpool1d 3 stride=1 padding=same"),
    "avgpool1d": ("input 9x2\navgpool1d 2", "input 9x2\navgpool1d 2 stride=3"),
    "global_avgpool": ("input 9x2\nglobal_avgpool", "input 4x4x3\nglobal_avgpool"),
    "global_maxpool": ("input 9x2\nglobal_maxpool", "input 4x4x3\nglobal_maxpool\ndense 2"),
    "residual": ("input 5\nresidual { dense 8 relu; dense 5 }",
                 "input 6x6x2\nresidual { conv2d 2 3 relu padding=same; batchnorm }",
                 "input 4\nresidual { repeat 2 { dense 4 relu }; residual { layernorm } }"),
}

LAYER_PARAMS = [pytest.param(kind, spec, id=f"{kind}-{i}")
                for kind, specs in LAYER_CASES.items() for i, spec in enumerate(specs)]


def checked(text: str) -> ir.Program:
    program, diagnostics = check_text(text)
    assert program is not None, [(d.code, d.message) for d in diagnostics if d.is_error]
    return program


def kinds(layers: tuple[ir.Layer, ...]) -> set[str]:
    """Every layer kind in the program, blocks and their bodies included."""
    return {kind for layer in layers for kind in (layer.kind, *kinds(layer.body))}


def abstract_variables(module, program: ir.Program) -> dict:
    x = jax.ShapeDtypeStruct((BATCH, *program.input_shape), input_dtype(program))
    return jax.eval_shape(lambda x: module.init({"params": KEY, "dropout": KEY}, x), x)


def test_every_registry_layer_has_a_lowering_case():
    assert set(LAYER_CASES) == {layer.name for layer in reg.LAYERS}


@pytest.mark.parametrize(("kind", "spec"), LAYER_PARAMS)
def test_module_builds_the_shapes_and_parameters_the_checker_inferred(kind, spec):
    program = checked(spec)
    assert kind in kinds(program.layers)
    module = lower(program).module
    variables = abstract_variables(module, program)
    assert sum(leaf.size for leaf in jax.tree.leaves(variables.get("params", {}))) == program.params
    stateful = any(reg.layer(k).stateful for k in kinds(program.layers))
    assert ("batch_stats" in variables) == stateful

    x = jax.ShapeDtypeStruct((BATCH, *program.input_shape), input_dtype(program))
    evaluation = jax.eval_shape(lambda v, x: module.apply(v, x), variables, x)
    training, _ = jax.eval_shape(lambda v, x: module.apply(v, x, train=True, rngs={"dropout": KEY},
                                                           mutable=["batch_stats"]), variables, x)
    assert evaluation.shape == training.shape == (BATCH, *program.output_shape)


def test_residual_adds_its_input_to_the_blocks_output():
    """A block of zeros (zero kernel, zero bias) leaves exactly the skip connection."""
    program = checked("input 4\nresidual { dense 4 relu init=zeros }")
    x = np.random.default_rng(3).normal(size=(2, 4)).astype(np.float32)
    module = lower(program).module
    np.testing.assert_array_equal(np.asarray(module.apply(module.init(KEY, x), x)), x)


# --- activations and initializers -------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# Each activation written out in NumPy, independently of the builders.
REFERENCE_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softmax": _softmax,
    # The exact gelu (Hendrycks & Gimpel, 2016), as Keras and PyTorch compute it by default.
    "gelu": lambda z: 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),
    "elu": lambda z: np.where(z > 0, z, np.expm1(z)),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "linear": lambda z: z,
}


@pytest.mark.parametrize("name", reg.names("activation"))
def test_activation_layer_computes_its_function(name):
    """Every name (aliases too) lowers to the function its registry entry stands for."""
    program = checked(f"input 6\nactivation {name}")
    z = np.linspace(-4, 4, 2 * 6, dtype=np.float32).reshape(2, 6)
    module = lower(program).module
    out = module.apply(module.init(KEY, z), z)
    reference = REFERENCE_ACTIVATIONS[reg.lookup("activation", name).name]
    np.testing.assert_allclose(np.asarray(out), reference(z.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_every_initializer_builds_its_own_kernel():
    kernels = {}
    for entry in reg.INITIALIZERS:
        program = checked(f"input 6\ndense 5 init={entry.name}")
        module = lower(program).module
        kernel = np.asarray(module.init(KEY, jnp.zeros((1, 6)))["params"]["dense_1"]["kernel"])
        assert kernel.shape == (6, 5)
        assert np.isfinite(kernel).all()
        kernels[entry.name] = kernel.tobytes()
    assert len(set(kernels.values())) == len(kernels), "two initializers built the same kernel"


def test_submodules_are_keyed_by_layer_name():
    program = checked("input 8\nrepeat 2 { dense 4 relu name=block }\nbatchnorm\ndropout 0.1\ndense 2 name=out")
    variables = jax.eval_shape(lambda: lower(program).module.init(KEY, jnp.zeros((1, 8))))
    assert sorted(variables["params"]) == ["batchnorm_1", "block_1", "block_2", "out"]
    assert sorted(variables["batch_stats"]) == ["batchnorm_1"]


def test_legacy_names_rename_a_tree_saved_before_layers_had_names():
    """Flax's auto names, as the models of earlier versions made them: one counter per module class
    over the whole model in order, blocks expanded; dropout made a module without variables."""
    program = checked("input 8x8x1\nconv2d 4 3 relu\nbatchnorm\nflatten\nrepeat 2 { dense 8 relu; dropout 0.1 }\n"
                      "residual { dense 8 relu; layernorm }\ndense 3 name=out")
    old = {"Conv_0": ("kernel", "bias"), "BatchNorm_0": ("scale", "bias"), "Dense_0": ("kernel", "bias"),
           "Dense_1": ("kernel", "bias"), "Dense_2": ("kernel", "bias"), "LayerNorm_0": ("scale", "bias"),
           "Dense_3": ("kernel", "bias")}
    mapping = legacy_names(program)
    assert mapping == {"Conv_0": "conv2d_1", "BatchNorm_0": "batchnorm_1", "Dense_0": "dense_1",
                       "Dropout_0": "dropout_1", "Dense_1": "dense_2", "Dropout_1": "dropout_2",
                       "Dense_2": "dense_3", "LayerNorm_0": "layernorm_1", "Dense_3": "out"}
    new = jax.eval_shape(lambda: lower(program).module.init(KEY, jnp.zeros((1, 8, 8, 1))))["params"]
    assert {mapping[k]: set(v) for k, v in old.items()} == {k: set(v) for k, v in new.items()}


# --- optimizers, clipping, schedules ----------------------------------------------------------


def quadratic(params: dict) -> jax.Array:
    return jnp.sum((params["w"] - 3.0) ** 2) + jnp.sum(params["b"] ** 2)


def optimizer_of(statement: str, schedule: str = "constant", steps_per_epoch: int = 2, total_steps: int = 8):
    program = checked(f"input 3\ndense 1\nloss mse\n{statement}\nschedule {schedule}")
    return program, optimizer(program, steps_per_epoch, total_steps)


def run_steps(tx: optax.GradientTransformation, steps: int) -> tuple[dict, list]:
    params = {"w": jnp.ones(3), "b": jnp.full((2,), 0.5)}
    state = tx.init(params)
    updates_seen = []
    for _ in range(steps):
        updates, state = tx.update(jax.grad(quadratic)(params), state, params)
        updates_seen.append(updates)
        params = optax.apply_updates(params, updates)
    return params, updates_seen


@pytest.mark.parametrize("schedule", [s.name for s in reg.SCHEDULES])
@pytest.mark.parametrize("name", [o.name for o in reg.OPTIMIZERS])
def test_optimizer_with_clip_makes_finite_updates_that_descend(name, schedule):
    """Each rule under each schedule, behind the clip (the chain without it is compared with optax below)."""
    start = quadratic({"w": jnp.ones(3), "b": jnp.full((2,), 0.5)})
    _, tx = optimizer_of(f"optimizer {name} clip=0.5", schedule)
    params, updates = run_steps(tx, steps=4)
    assert all(np.isfinite(leaf).all() for u in updates for leaf in jax.tree.leaves(u))
    assert quadratic(params) < start


@pytest.mark.parametrize("name", [o.name for o in reg.OPTIMIZERS])
def test_learning_rate_applied_last_equals_the_rule_with_it_built_in(name):
    """The lowering scales by `lr` after the rule (so `lr` can vary without recompiling); every
    optimizer must be linear in its learning rate for that to mean the same thing."""
    program, tx = optimizer_of(f"optimizer {name} lr=0.05")
    entry = reg.lookup("optimizer", name)
    built_in = entry.build(program.optimizer.args, 0.05, optax)
    _, ours = run_steps(tx, steps=3)
    _, theirs = run_steps(built_in, steps=3)
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-8), a, b)


def test_clip_bounds_the_global_gradient_norm():
    _, clipped = optimizer_of("optimizer sgd lr=1 clip=0.5")
    _, free = optimizer_of("optimizer sgd lr=1")
    (_, [update]), (_, [unclipped]) = run_steps(clipped, 1), run_steps(free, 1)
    assert optax.tree.norm(unclipped) > 1
    np.testing.assert_allclose(optax.tree.norm(update), 0.5, rtol=1e-6)


def test_schedule_changes_the_step_size_between_epochs():
    """With a constant gradient, sgd's steps follow the schedule: equal under `constant`,
    shrinking under `exponential` (one decay per epoch of 2 steps by default)."""
    def step_sizes(schedule: str) -> list[float]:
        _, tx = optimizer_of("optimizer sgd lr=0.1", schedule)
        params = {"w": jnp.ones(3)}
        state = tx.init(params)
        sizes = []
        for _ in range(4):
            updates, state = tx.update({"w": jnp.ones(3)}, state, params)
            sizes.append(float(optax.tree.norm(updates)))
        return sizes

    constant, decaying = step_sizes("constant"), step_sizes("exponential decay_rate=0.5")
    np.testing.assert_allclose(constant, [0.1 * math.sqrt(3)] * 4, rtol=1e-6)
    np.testing.assert_allclose(decaying[2] / decaying[0], 0.5, rtol=1e-5)


# --- from-logits fusion -----------------------------------------------------------------------


def naive_categorical(probabilities: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(probabilities[np.arange(len(y)), y])


def naive_binary(probabilities: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.mean(-(y * np.log(probabilities) + (1 - y) * np.log(1 - probabilities)), axis=-1)


def stable_categorical(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    top = z.max(-1)
    return top + np.log(np.exp(z - top[:, None]).sum(-1)) - z[np.arange(len(y)), y]


def stable_binary(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)


# (loss, output layers, labels of 8 examples, naive form on probabilities, stable form on logits)
FUSED = {
    "categorical_crossentropy": ("dense 3 softmax", np.arange(8) % 3, naive_categorical, stable_categorical),
    "binary_crossentropy": ("dense 1 sigmoid", (np.arange(8) % 2).reshape(8, 1).astype(np.float32),
                            naive_binary, stable_binary),
}


@pytest.fixture(scope="module", params=list(FUSED))
def fused(request):
    """A lowered classifier whose output activation is fused into its loss, its variables, and
    its labels, with the two reference forms of the loss."""
    output, y, naive, stable = FUSED[request.param]
    program = checked(f"input 4\ndense 6 relu\n{output}\nloss {request.param}\noptimizer sgd")
    lowered = lower(program)
    assert lowered.module.fused_output
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    return lowered, lowered.module.init(KEY, x), x, y, naive, stable


def test_fused_loss_equals_the_naive_loss_on_moderate_logits(fused):
    lowered, variables, x, y, naive, _ = fused
    z = lowered.module.apply(variables, x, logits=True)
    probabilities = np.asarray(lowered.module.apply(variables, x), np.float64)
    assert np.abs(np.asarray(z)).max() < 20
    np.testing.assert_allclose(np.asarray(lowered.loss(z, y)), naive(probabilities, y), rtol=1e-5)


def test_fused_loss_stays_finite_on_extreme_logits(fused):
    lowered, variables, x, y, naive, stable = fused
    x_big = x * 1e4 / np.abs(x).max()
    z = lowered.module.apply(variables, x_big, logits=True)
    assert 1e3 < np.abs(np.asarray(z)).max() < 1e5
    with np.errstate(divide="ignore", invalid="ignore"):
        assert not np.isfinite(naive(np.asarray(lowered.module.apply(variables, x_big), np.float64), y)).all()
    loss = np.asarray(lowered.loss(z, y))
    np.testing.assert_allclose(loss, stable(np.asarray(z, np.float64), y), rtol=1e-5, atol=1e-2)

    def mean_loss(params):
        return jnp.mean(lowered.loss(lowered.module.apply({"params": params}, x_big, logits=True), y))

    assert all(np.isfinite(g).all() for g in jax.tree.leaves(jax.jit(jax.grad(mean_loss))(variables["params"])))


@pytest.mark.parametrize("output", ["dense 3 softmax", "dense 3 softmax\ndropout 0.2", "dense 3\nactivation softmax",
                                    "repeat 2 { dense 3 softmax }"])
def test_predictions_apply_the_fused_softmax_exactly_once(output):
    program = checked(f"input 4\n{output}\nloss categorical_crossentropy\noptimizer sgd")
    module = lower(program).module
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    variables = module.init(KEY, x)
    z, probabilities = module.apply(variables, x, logits=True), np.asarray(module.apply(variables, x))
    np.testing.assert_allclose(probabilities, _softmax(np.asarray(z, np.float64)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)


def test_linear_output_is_already_logits():
    """`dense 3` with a cross-entropy: nothing is fused, the outputs are the logits, and metrics
    see their softmax."""
    program = checked("input 4\ndense 3\nloss categorical_crossentropy\noptimizer sgd")
    lowered = lower(program)
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    variables = lowered.module.init(KEY, x)
    z = lowered.module.apply(variables, x, logits=True)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(lowered.module.apply(variables, x)))
    np.testing.assert_allclose(np.asarray(lowered.predictions(z)), _softmax(np.asarray(z, np.float64)), rtol=1e-5)
