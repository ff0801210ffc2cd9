"""Layers: shape rules (pure Python), parameter counts, Flax builders, and the flags that tell the
checker, the lowering, the summary and the runtime how to treat each layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlc.compiler.registry.base import (
    FRACTION,
    GREATER_THAN_ZERO,
    NON_NEGATIVE,
    POSITIVE,
    Entry,
    Param,
    Range,
    Shape,
    ShapeError,
    option,
    positional,
    show_shape,
)


@dataclass(frozen=True)
class Layer(Entry):
    """`shape(input, args) -> output` raises ShapeError; `weights(input, args)` gives the shapes of
    its parameters by their Flax names (None: a layer without parameters), which count them and
    match them with a trained run's (`init`); `build(args, lib)` returns `apply(x, train) -> y`, called inside a Flax compact
    method (lib: nn, jnp, jax and helpers); `args["name"]` is the layer's name, which names the
    Flax module it makes, so the parameter tree is keyed by layer names. `code(args, src)` writes
    the same layer out as Python for `--emit py`: an expression of `x` (and `train`, `rows`) giving
    its output (or a tuple of them, each of the `x` the one before gives, so that each is a line of
    its own), with `src.initializer(name)` the code of an initializer; it must compute exactly
    what `build` does (tests/emit holds the two to the same numbers). The fields after `code` tell
    the checker, the lowering, the summary and the runtime how to treat the layer, so none of them
    names one."""

    shape: Callable[[Shape, dict], Shape] = lambda s, a: s
    weights: Callable[[Shape, dict], dict[str, Shape]] | None = None
    build: Callable[[dict, Any], Any] | None = None
    code: Callable[[dict, Any], str | tuple[str, ...]] | None = None
    block: bool = False  # takes `{ ... }`
    # Keeps non-trainable state (batchnorm's running statistics); its `apply` also takes `rows`,
    # 1 for the real examples of the batch and 0 for padding, so that padding never enters it.
    stateful: bool = False
    train_only: bool = False  # behaves differently in training (dropout)
    # settling(args): training steps its running statistics need before their initial values
    # weigh under 1%; a run with fewer steps evaluates with statistics that never settled (W104).
    settling: Callable[[dict], int] | None = None
    # Its `activation` argument is applied to its output by the lowering: the last such layer's is
    # the model's output activation, which the checker reads and the lowering may fuse into the loss.
    activates: bool = False
    # Leaves the meaning of values alone (dropout, flatten): the model's output activation is then
    # that of the layer before it.
    passes_activation: bool = False
    # A block whose output is added to its input (a skip connection): the shapes must agree, and
    # the sum has no output activation for a loss to fuse.
    skip: bool = False
    # A block laid down this parameter's number of times, each copy with its own weights.
    copies: str | None = None
    # On a CPU, train one compiled step per mini-batch rather than a scan over them: XLA's CPU
    # backward pass of convolutions is far slower inside a loop (see `Trainer.epoch_by_steps`).
    per_step_on_cpu: bool = False
    # The Flax random stream its `apply` draws from while training (`nn.Dropout` draws from `dropout`).
    rng_stream: str | None = None
    # Sequences of integer token ids (`embedding`): it takes the model's input, which is then int32
    # ids below `takes_tokens(args)` (id 0 pads the end of a sequence), and the padding mask starts there.
    takes_tokens: Callable[[dict], int] | None = None
    # Whether output step t is input step t's (dropout, a `padding=same` stride-1 convolution): the
    # padding mask stays aligned with the steps through it; any other layer drops the mask.
    steps_kept: Callable[[dict], bool] | None = None
    # Its `apply` also takes `mask`, (batch, steps) true up to each sequence's last token, or None
    # (no token input, or the mask was dropped); its `code` then sees `args["masked"]`.
    masked: bool = False

    @property
    def learns(self) -> bool:
        """Whether it has parameters: those take `trainable=false`, and `init` may copy them."""
        return self.weights is not None

    def count(self, shape: Shape, args: dict) -> int:
        """Its number of parameters on an input of `shape`."""
        return sum(math.prod(dims) for dims in self.weights(shape, args).values()) if self.learns else 0


def _always(a: dict) -> bool:
    return True


def _steps_to_forget(momentum: float) -> int:
    """Steps after which a running average with this momentum keeps under 1% of its start."""
    return 1 if momentum <= 0 else math.ceil(math.log(0.01) / math.log(momentum))


def _need_rank(shape: Shape, rank: int, layer: str) -> None:
    if len(shape) == rank:
        return
    if rank == 1:
        raise ShapeError("E401", f"`{layer}` needs a flat input, got {show_shape(shape)}",
                         "add `flatten` before it")
    raise ShapeError("E400", f"`{layer}` needs an image input (height x width x channels), got {show_shape(shape)}",
                     "set `input HxWxC`, like `input 8x8x1`, or reshape the data with `input`")


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _windowed(shape: Shape, args: dict, window_key: str, layer: str) -> Shape:
    """Output height and width of a convolution or pool (the rules of `lax` VALID and SAME)."""
    _need_rank(shape, 3, layer)
    (kh, kw), (sh, sw) = _windows(args, window_key)
    h, w = shape[0], shape[1]
    if args["padding"] == "same":
        return (-(-h // sh), -(-w // sw))
    if kh > h or kw > w:
        raise ShapeError("E402", f"`{layer}` window {kh}x{kw} is larger than its {h}x{w} input",
                         "use a smaller window, `padding=same`, or fewer pooling layers before it")
    return ((h - kh) // sh + 1, (w - kw) // sw + 1)


def _conv_shape(shape: Shape, a: dict) -> Shape:
    return _windowed(shape, a, "kernel", "conv2d") + (a["filters"],)


def _pool_shape(name: str) -> Callable[[Shape, dict], Shape]:
    return lambda shape, a: _windowed(shape, a, "size", name) + (shape[2],)


def _dense_shape(shape: Shape, a: dict) -> Shape:
    _need_rank(shape, 1, "dense")
    return (a["units"],)


def _any_rank(name: str) -> Callable[[Shape, dict], Shape]:
    def rule(shape: Shape, a: dict) -> Shape:
        if not shape:
            raise ShapeError("E401", f"`{name}` needs at least one axis")
        return shape
    return rule


def _windows(a: dict, window_key: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(window, strides) of a convolution or pool: the stride defaults to the window."""
    return _pair(a[window_key]), _pair(a["stride"] if a.get("stride") is not None else a[window_key])


def _with_bias(weights: dict[str, Shape], a: dict, units: int) -> dict[str, Shape]:
    return {**weights, "bias": (units,)} if a["bias"] else weights


def _scale_and_bias(shape: Shape, a: dict) -> dict[str, Shape]:
    """A normalisation's parameters: a scale and a shift per channel (the last axis)."""
    return {"scale": (shape[-1],), "bias": (shape[-1],)}


def _build_dense(a: dict, lib: Any) -> Any:
    dense = lib.nn.Dense(a["units"], use_bias=a["bias"], kernel_init=lib.initializer(a["init"]),
                         name=a["name"])
    return lambda x, train: dense(x)


def _build_conv(a: dict, lib: Any) -> Any:
    conv = lib.nn.Conv(a["filters"], _pair(a["kernel"]), strides=_pair(a["stride"]), use_bias=a["bias"],
                       padding=a["padding"].upper(), kernel_init=lib.initializer(a["init"]), name=a["name"])
    return lambda x, train: conv(x)


def _code_conv(a: dict, src: Any) -> str:
    return (f"nn.Conv({a['filters']}, {_pair(a['kernel'])}, strides={_pair(a['stride'])}, use_bias={a['bias']}, "
            f"padding=\"{a['padding'].upper()}\", kernel_init={src.initializer(a['init'])}, name=\"{a['name']}\")(x)")


def _build_pool(pool: Callable[[Any], Callable]) -> Callable[[dict, Any], Any]:
    def build(a: dict, lib: Any) -> Any:
        window, strides = _windows(a, "size")
        return lambda x, train: pool(lib.nn)(x, window, strides=strides, padding=a["padding"].upper())
    return build


def _code_pool(function: str) -> Callable[[dict, Any], str]:
    def code(a: dict, src: Any) -> str:
        window, strides = _windows(a, "size")
        return f"nn.{function}(x, {window}, strides={strides}, padding=\"{a['padding'].upper()}\")"
    return code


def _build_dropout(a: dict, lib: Any) -> Any:
    dropout = lib.nn.Dropout(a["rate"], name=a["name"])
    return lambda x, train: dropout(x, deterministic=not train)


def _build_batchnorm(a: dict, lib: Any) -> Any:
    norm = lib.nn.BatchNorm(momentum=a["momentum"], epsilon=a["eps"], name=a["name"])

    def apply(x, train, rows=None):
        # Statistics over the real examples only: the padding of a last partial batch is left out.
        mask = None if rows is None else rows.reshape((-1,) + (1,) * (x.ndim - 1)) > 0
        # A frozen batchnorm normalises with its running statistics in training too, and so never
        # updates them (as Keras does): fine-tuning on a few examples keeps the trained statistics.
        return norm(x, use_running_average=not train or not a["trainable"], mask=mask)

    return apply


def _code_batchnorm(a: dict, src: Any) -> str:
    return (f"nn.BatchNorm(momentum={a['momentum']!r}, epsilon={a['eps']!r}, name=\"{a['name']}\")"
            f"(x, use_running_average={'not train' if a['trainable'] else 'True'}, mask=real_rows(rows, x))")


def _build_layernorm(a: dict, lib: Any) -> Any:
    norm = lib.nn.LayerNorm(epsilon=a["eps"], name=a["name"])
    return lambda x, train: norm(x)


ACTIVATION_PARAM = positional("activation", "ref", "activation applied to the output", "linear", table="activation")
INIT_PARAM = option("init", "ref", "kernel initializer", "glorot_uniform", table="initializer")
PADDING = option("padding", "choice", "`valid` (no padding) or `same` (keep the size at stride 1)", "valid",
                 choices=("valid", "same"))


# Penalties on a layer's weights added to the training loss (not to the reported validation loss):
# l1 x sum |w| + l2 x sum w^2 over every parameter of the layer but its biases (a dense or
# convolution's kernel, a recurrent cell's input and recurrent kernels, an embedding's table), as
# Keras's `kernel_regularizer` (and `recurrent_regularizer`) `L1L2(l1, l2)`. A layer opts in by
# listing these among its parameters; `runtime/measures.penalty` reads them from its arguments.
KERNEL_PENALTIES: tuple[Param, ...] = (
    option("l1", "float", "L1 penalty: this times the sum of the absolute weights (biases aside) is added to the "
           "training loss", 0.0, range=NON_NEGATIVE, shape_free=True, synonyms=("lasso",)),
    option("l2", "float", "L2 penalty: this times the sum of the squared weights (biases aside) is added to the "
           "training loss", 0.0, range=NON_NEGATIVE, shape_free=True,
           synonyms=("weight_decay", "kernel_regularizer", "ridge")),
)


def conv_params(kernel: Param, kind: str) -> tuple[Param, ...]:
    """A convolution's parameters, `kernel` and the stride's `kind` (`int` for 1-d, `size` for 2-d) aside."""
    return (positional("filters", "int", "number of output channels", range=POSITIVE), kernel, ACTIVATION_PARAM,
            option("stride", kind, "step between windows", 1, range=POSITIVE), PADDING,
            option("bias", "bool", "add a learned bias", True), INIT_PARAM, *KERNEL_PENALTIES)

# Options every layer takes besides its own. A layer without `name=` is named after its kind and its
# 1-based index among the layers of that kind in the expanded model: `dense_1`, `dropout_1`, `dense_2`.
LAYER_COMMON: tuple[Param, ...] = (
    option("name", "name", "the layer's name, which keys its parameters in checkpoints (default: KIND_INDEX, "
           "like `dense_2`); inside `repeat N` each copy gets `_1` … `_N` appended", None, synonyms=("id", "label")),
    option("trainable", "bool", "`false` freezes the layer's parameters (on a block: every layer in it): training "
           "never updates them, and a frozen `batchnorm` normalises with its running statistics", True,
           synonyms=("frozen", "freeze", "trainable_weights")),
)

LAYERS: tuple[Layer, ...] = (
    Layer("dense", "a fully connected layer: every output unit sees every input",
          (positional("units", "int", "number of output units", range=POSITIVE),
           ACTIVATION_PARAM,
           option("bias", "bool", "add a learned bias", True),
           INIT_PARAM, *KERNEL_PENALTIES),
          example="dense 64 relu",
          shape=_dense_shape,
          weights=lambda s, a: _with_bias({"kernel": (s[0], a["units"])}, a, a["units"]),
          build=_build_dense, activates=True,
          code=lambda a, src: f"nn.Dense({a['units']}, use_bias={a['bias']}, kernel_init={src.initializer(a['init'])}, "
                              f"name=\"{a['name']}\")(x)"),
    Layer("dropout", "randomly zero a fraction of inputs while training (a regulariser)",
          (positional("rate", "float", "fraction of inputs dropped", range=FRACTION, shape_free=True),),
          example="dropout 0.5",
          build=_build_dropout, train_only=True, passes_activation=True, rng_stream="dropout", steps_kept=_always,
          code=lambda a, src: f"nn.Dropout({a['rate']!r}, name=\"{a['name']}\")(x, deterministic=not train)"),
    Layer("activation", "apply an activation function on its own",
          (positional("activation", "ref", "the activation", table="activation"),),
          example="activation relu",
          build=lambda a, lib: lambda x, train: x, activates=True, code=lambda a, src: "x", steps_kept=_always),
    Layer("flatten", "reshape each example to one axis",
          example="flatten",
          shape=lambda s, a: (math.prod(s),),
          build=lambda a, lib: lambda x, train: x.reshape((x.shape[0], -1)), passes_activation=True,
          code=lambda a, src: "x.reshape((x.shape[0], -1))"),
    Layer("conv2d", "a 2-D convolution over height and width",
          conv_params(positional("kernel", "size", "kernel size, `3` or `3x3`", range=POSITIVE), "size"),
          example="conv2d 16 3x3 relu",
          shape=_conv_shape,
          weights=lambda s, a: _with_bias({"kernel": (*_pair(a["kernel"]), s[2], a["filters"])}, a, a["filters"]),
          build=_build_conv, code=_code_conv, activates=True, per_step_on_cpu=True),
    Layer("maxpool2d", "keep the largest value of each window",
          (positional("size", "size", "window size, `2` or `2x2`", range=POSITIVE),
           option("stride", "size", "step between windows (default: the window size)", None, range=POSITIVE),
           PADDING),
          example="maxpool2d 2",
          shape=_pool_shape("maxpool2d"), build=_build_pool(lambda nn: nn.max_pool),
          code=_code_pool("max_pool")),
    Layer("avgpool2d", "average each window",
          (positional("size", "size", "window size, `2` or `2x2`", range=POSITIVE),
           option("stride", "size", "step between windows (default: the window size)", None, range=POSITIVE),
           PADDING),
          example="avgpool2d 2",
          shape=_pool_shape("avgpool2d"), build=_build_pool(lambda nn: nn.avg_pool),
          code=_code_pool("avg_pool")),
    Layer("batchnorm", "normalise each channel over the batch; running statistics are used at evaluation",
          (option("momentum", "float", "decay of the running statistics", 0.99, range=FRACTION),
           option("eps", "float", "added to the variance", 1e-3, range=GREATER_THAN_ZERO)),
          example="batchnorm",
          shape=_any_rank("batchnorm"), weights=_scale_and_bias,
          # Its batch statistics would count padding steps: the padding mask ends here.
          build=_build_batchnorm, code=_code_batchnorm, stateful=True, settling=lambda a: _steps_to_forget(a["momentum"])),
    Layer("layernorm", "normalise each example over its last axis",
          (option("eps", "float", "added to the variance", 1e-6, range=GREATER_THAN_ZERO),),
          example="layernorm",
          shape=_any_rank("layernorm"), weights=_scale_and_bias,
          build=_build_layernorm, steps_kept=_always,
          code=lambda a, src: f"nn.LayerNorm(epsilon={a['eps']!r}, name=\"{a['name']}\")(x)"),
    Layer("repeat", "the layers of the block, N times over, each time with their own weights",
          (positional("times", "int", "how many times", range=Range(lo=1, hi=1000)),),
          example="repeat 3 { dense 64 relu; dropout 0.1 }", block=True, copies="times"),
    Layer("residual", "the block's output added to its input (a skip connection); shapes must agree",
          example="residual { dense 64 relu }", block=True, skip=True),
)
