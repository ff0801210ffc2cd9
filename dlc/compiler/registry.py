"""The one registry: every statement, layer, activation, loss, optimizer, schedule, metric,
initializer and built-in dataset of the language, declared once.

The checker, the summary, `dlc explain`, the docs, did-you-mean suggestions, the lowering and
the contract tests all read these tables. Adding a layer is one `Layer(...)` entry here.
Shape rules are pure Python; builders import Flax and Optax inside, through the `lib`
namespace the lowering passes in, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # the default of a parameter that must be given


@dataclass(frozen=True)
class Range:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return False
        return True

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '≥'} {_num(self.lo)}"
        return f"{'<' if self.hi_open else '≤'} {_num(self.hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


POSITIVE = Range(lo=1)
NON_NEGATIVE = Range(lo=0)
GREATER_THAN_ZERO = Range(lo=0, lo_open=True)
FRACTION = Range(lo=0, hi=1, hi_open=True)  # rates and fractions: [0, 1)
PROBABILITY_OPEN = Range(lo=0, hi=1, lo_open=True, hi_open=True)

# What a parameter's value must be. `ref` names a table below; `size` is INT or HxW.
KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "`true` or `false`",
    "name": "a name",
    "string": "a string in double quotes",
    "shape": "a shape like `28x28x1` or an integer",
    "size": "an integer or a shape like `3x3`",
    "choice": "one of the names listed",
    "ref": "a name",
    "source": "a built-in dataset name or a file path in double quotes",
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    doc: str
    default: Any = REQUIRED
    range: Range | None = None
    positional: bool = False
    choices: tuple[str, ...] = ()
    table: str | None = None  # for kind "ref": which table the name is looked up in
    variadic: bool = False  # a positional that takes one or more values
    synonyms: tuple[str, ...] = ()  # names users try for it (`learning_rate`): did-you-mean only
    maximum_doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def option(name: str, kind: str, doc: str, default: Any = None, **kw: Any) -> Param:
    return Param(name, kind, doc, default, **kw)


def positional(name: str, kind: str, doc: str, default: Any = REQUIRED, **kw: Any) -> Param:
    return Param(name, kind, doc, default, positional=True, **kw)


@dataclass(frozen=True)
class Entry:
    """One named thing of the language."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    example: str = ""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def positionals(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.positional)

    @property
    def options(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.positional)


class ShapeError(Exception):
    """A layer cannot take its input shape. `code` is the diagnostic code."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


Shape = tuple[int, ...]


def show_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape) if shape else "scalar"


# --- layers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer(Entry):
    """`shape(input, args) -> output` raises ShapeError; `count(input, args)` gives trainable
    parameters; `build(args, lib)` returns `apply(x, train) -> y`, called inside a Flax compact
    method (lib: nn, jnp, jax and helpers); `args["name"]` is the layer's name, which names the
    Flax module it makes, so the parameter tree is keyed by layer names. The fields after `build` tell the checker, the
    lowering, the summary and the runtime how to treat the layer, so none of them names one."""

    shape: Callable[[Shape, dict], Shape] = lambda s, a: s
    count: Callable[[Shape, dict], int] = lambda s, a: 0
    build: Callable[[dict, Any], Any] | None = None
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
    kh, kw = _pair(args[window_key])
    sh, sw = _pair(args["stride"] if args.get("stride") is not None else args[window_key])
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


def _build_dense(a: dict, lib: Any) -> Any:
    dense = lib.nn.Dense(a["units"], use_bias=a["bias"], kernel_init=lib.initializer(a["init"]),
                         name=a["name"])
    return lambda x, train: dense(x)


def _build_conv(a: dict, lib: Any) -> Any:
    conv = lib.nn.Conv(a["filters"], _pair(a["kernel"]), strides=_pair(a["stride"]), use_bias=a["bias"],
                       padding=a["padding"].upper(), kernel_init=lib.initializer(a["init"]), name=a["name"])
    return lambda x, train: conv(x)


def _build_pool(pool: Callable[[Any], Callable]) -> Callable[[dict, Any], Any]:
    def build(a: dict, lib: Any) -> Any:
        window = _pair(a["size"])
        strides = _pair(a["stride"] if a["stride"] is not None else a["size"])
        return lambda x, train: pool(lib.nn)(x, window, strides=strides, padding=a["padding"].upper())
    return build


def _build_dropout(a: dict, lib: Any) -> Any:
    dropout = lib.nn.Dropout(a["rate"], name=a["name"])
    return lambda x, train: dropout(x, deterministic=not train)


def _build_batchnorm(a: dict, lib: Any) -> Any:
    norm = lib.nn.BatchNorm(momentum=a["momentum"], epsilon=a["eps"], name=a["name"])

    def apply(x, train, rows=None):
        # Statistics over the real examples only: the padding of a last partial batch is left out.
        mask = None if rows is None else rows.reshape((-1,) + (1,) * (x.ndim - 1)) > 0
        return norm(x, use_running_average=not train, mask=mask)

    return apply


def _build_layernorm(a: dict, lib: Any) -> Any:
    norm = lib.nn.LayerNorm(epsilon=a["eps"], name=a["name"])
    return lambda x, train: norm(x)


ACTIVATION_PARAM = positional("activation", "ref", "activation applied to the output", "linear", table="activation")
INIT_PARAM = option("init", "ref", "kernel initializer", "glorot_uniform", table="initializer")
PADDING = option("padding", "choice", "`valid` (no padding) or `same` (keep the size at stride 1)", "valid",
                 choices=("valid", "same"))

# Options every layer takes besides its own. A layer without `name=` is named after its kind and its
# 1-based index among the layers of that kind in the expanded model: `dense_1`, `dropout_1`, `dense_2`.
LAYER_COMMON: tuple[Param, ...] = (
    option("name", "name", "the layer's name, which keys its parameters in checkpoints (default: KIND_INDEX, "
           "like `dense_2`); inside `repeat N` each copy gets `_1` … `_N` appended", None, synonyms=("id", "label")),
)

LAYERS: tuple[Layer, ...] = (
    Layer("dense", "a fully connected layer: every output unit sees every input",
          (positional("units", "int", "number of output units", range=POSITIVE),
           ACTIVATION_PARAM,
           option("bias", "bool", "add a learned bias", True),
           INIT_PARAM),
          example="dense 64 relu",
          shape=_dense_shape,
          count=lambda s, a: s[0] * a["units"] + (a["units"] if a["bias"] else 0),
          build=_build_dense, activates=True),
    Layer("dropout", "randomly zero a fraction of inputs while training (a regulariser)",
          (positional("rate", "float", "fraction of inputs dropped", range=FRACTION),),
          example="dropout 0.5",
          build=_build_dropout, train_only=True, passes_activation=True, rng_stream="dropout"),
    Layer("activation", "apply an activation function on its own",
          (positional("activation", "ref", "the activation", table="activation"),),
          example="activation relu",
          build=lambda a, lib: lambda x, train: x, activates=True),
    Layer("flatten", "reshape each example to one axis",
          example="flatten",
          shape=lambda s, a: (math.prod(s),),
          build=lambda a, lib: lambda x, train: x.reshape((x.shape[0], -1)), passes_activation=True),
    Layer("conv2d", "a 2-D convolution over height and width",
          (positional("filters", "int", "number of output channels", range=POSITIVE),
           positional("kernel", "size", "kernel size, `3` or `3x3`", range=POSITIVE),
           ACTIVATION_PARAM,
           option("stride", "size", "step between windows", 1, range=POSITIVE),
           PADDING,
           option("bias", "bool", "add a learned bias", True),
           INIT_PARAM),
          example="conv2d 16 3x3 relu",
          shape=_conv_shape,
          count=lambda s, a: math.prod(_pair(a["kernel"])) * s[2] * a["filters"] + (a["filters"] if a["bias"] else 0),
          build=_build_conv, activates=True, per_step_on_cpu=True),
    Layer("maxpool2d", "keep the largest value of each window",
          (positional("size", "size", "window size, `2` or `2x2`", range=POSITIVE),
           option("stride", "size", "step between windows (default: the window size)", None, range=POSITIVE),
           PADDING),
          example="maxpool2d 2",
          shape=_pool_shape("maxpool2d"), build=_build_pool(lambda nn: nn.max_pool)),
    Layer("avgpool2d", "average each window",
          (positional("size", "size", "window size, `2` or `2x2`", range=POSITIVE),
           option("stride", "size", "step between windows (default: the window size)", None, range=POSITIVE),
           PADDING),
          example="avgpool2d 2",
          shape=_pool_shape("avgpool2d"), build=_build_pool(lambda nn: nn.avg_pool)),
    Layer("batchnorm", "normalise each channel over the batch; running statistics are used at evaluation",
          (option("momentum", "float", "decay of the running statistics", 0.99, range=FRACTION),
           option("eps", "float", "added to the variance", 1e-3, range=GREATER_THAN_ZERO)),
          example="batchnorm",
          shape=_any_rank("batchnorm"), count=lambda s, a: 2 * s[-1],
          build=_build_batchnorm, stateful=True, settling=lambda a: _steps_to_forget(a["momentum"])),
    Layer("layernorm", "normalise each example over its last axis",
          (option("eps", "float", "added to the variance", 1e-6, range=GREATER_THAN_ZERO),),
          example="layernorm",
          shape=_any_rank("layernorm"), count=lambda s, a: 2 * s[-1],
          build=_build_layernorm),
    Layer("repeat", "the layers of the block, N times over, each time with their own weights",
          (positional("times", "int", "how many times", range=Range(lo=1, hi=1000)),),
          example="repeat 3 { dense 64 relu; dropout 0.1 }", block=True, copies="times"),
    Layer("residual", "the block's output added to its input (a skip connection); shapes must agree",
          example="residual { dense 64 relu }", block=True, skip=True),
)

# --- activations, initializers ----------------------------------------------------------------


@dataclass(frozen=True)
class Activation(Entry):
    build: Callable[[Any], Callable] | None = None  # build(lib) -> elementwise function
    # Its outputs along the last axis sum to 1: over a last axis of one unit it is the constant 1,
    # so the layers before it get no gradient and the output says nothing (an error, E405).
    sums_to_one: bool = False


ACTIVATIONS: tuple[Activation, ...] = (
    Activation("relu", "max(0, x)", build=lambda lib: lib.nn.relu),
    Activation("sigmoid", "1 / (1 + e^-x): a probability for each unit", build=lambda lib: lib.nn.sigmoid),
    Activation("tanh", "hyperbolic tangent, in (-1, 1)", build=lambda lib: lib.jnp.tanh),
    Activation("softmax", "probabilities over the last axis that sum to 1", build=lambda lib: lib.nn.softmax,
               sums_to_one=True),
    Activation("gelu", "Gaussian error linear unit (exact, as in Keras and PyTorch)",
               build=lambda lib: lambda x: lib.nn.gelu(x, approximate=False)),
    Activation("elu", "exponential linear unit", build=lambda lib: lib.nn.elu),
    Activation("leaky_relu", "relu with slope 0.01 below zero", build=lambda lib: lib.nn.leaky_relu),
    Activation("silu", "x * sigmoid(x)", aliases=("swish",), build=lambda lib: lib.nn.silu),
    Activation("softplus", "log(1 + e^x), a smooth relu", build=lambda lib: lib.nn.softplus),
    Activation("linear", "the identity: no activation", build=lambda lib: lambda x: x),
)


@dataclass(frozen=True)
class Initializer(Entry):
    build: Callable[[Any], Any] | None = None  # build(lib) -> a jax.nn.initializers function


INITIALIZERS: tuple[Initializer, ...] = (
    Initializer("glorot_uniform", "Glorot/Xavier uniform (the Keras default)",
                build=lambda lib: lib.jax.nn.initializers.glorot_uniform()),
    Initializer("glorot_normal", "Glorot/Xavier normal", build=lambda lib: lib.jax.nn.initializers.glorot_normal()),
    Initializer("he_uniform", "He uniform, for relu", build=lambda lib: lib.jax.nn.initializers.he_uniform()),
    Initializer("he_normal", "He normal, for relu", build=lambda lib: lib.jax.nn.initializers.he_normal()),
    Initializer("lecun_uniform", "LeCun uniform", build=lambda lib: lib.jax.nn.initializers.lecun_uniform()),
    Initializer("lecun_normal", "LeCun normal (the Flax default)",
                build=lambda lib: lib.jax.nn.initializers.lecun_normal()),
    Initializer("zeros", "all zeros", build=lambda lib: lib.jax.nn.initializers.zeros),
)

# --- losses, metrics --------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss(Entry):
    """`task`: `categorical` (integer class labels), `binary` (0/1 per unit) or `regression`.
    `probability`: the output activation this loss fuses with (the from-logits form).
    `per_example(outputs, labels, args, lib)`: one loss value per example; cross-entropies get
    logits (the output before its softmax/sigmoid)."""

    task: str = "regression"
    probability: str | None = None
    per_example: Callable[..., Any] | None = None


LOSSES: tuple[Loss, ...] = (
    Loss("mse", "mean squared error", example="loss mse",
         per_example=lambda out, y, a, lib: lib.jnp.mean((out - y) ** 2, axis=-1)),
    Loss("mae", "mean absolute error", example="loss mae",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.jnp.abs(out - y), axis=-1)),
    Loss("huber", "squared error near zero, absolute error beyond `delta`",
         (option("delta", "float", "where the loss turns linear", 1.0, range=GREATER_THAN_ZERO),),
         example="loss huber delta=1.0",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.optax.huber_loss(out, y, delta=a["delta"]), axis=-1)),
    Loss("binary_crossentropy", "log loss of one probability per unit (two classes, or several labels)",
         example="loss binary_crossentropy", task="binary", probability="sigmoid",
         per_example=lambda out, y, a, lib: lib.jnp.mean(lib.optax.sigmoid_binary_cross_entropy(out, y), axis=-1)),
    Loss("categorical_crossentropy", "log loss of a probability over classes; labels are class indices",
         aliases=("sparse_categorical_crossentropy",), example="loss categorical_crossentropy",
         task="categorical", probability="softmax",
         per_example=lambda out, y, a, lib: lib.optax.softmax_cross_entropy_with_integer_labels(out, y)),
)


@dataclass(frozen=True)
class Metric(Entry):
    """`per_example(predictions, labels, task, lib)`: one value per example. Predictions are
    probabilities for classification losses, outputs for regression."""

    needs_classification: bool = False
    higher_is_better: bool = False
    per_example: Callable[..., Any] | None = None


def _accuracy(pred: Any, y: Any, task: str, lib: Any) -> Any:
    if task == "categorical":
        return (lib.jnp.argmax(pred, axis=-1) == y).astype(lib.jnp.float32)
    return lib.jnp.mean(((pred > 0.5) == (y > 0.5)).astype(lib.jnp.float32), axis=-1)


def _as_target(pred: Any, y: Any, task: str, lib: Any) -> Any:
    """Labels in the shape of the predictions: one-hot for class indices."""
    return lib.jax.nn.one_hot(y, pred.shape[-1]) if task == "categorical" else y


METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "fraction of examples whose predicted class is right", example="metrics accuracy",
           needs_classification=True, higher_is_better=True, per_example=_accuracy),
    Metric("mse", "mean squared error", example="metrics mse",
           per_example=lambda p, y, task, lib: lib.jnp.mean((p - _as_target(p, y, task, lib)) ** 2, axis=-1)),
    Metric("mae", "mean absolute error", example="metrics mae",
           per_example=lambda p, y, task, lib: lib.jnp.mean(lib.jnp.abs(p - _as_target(p, y, task, lib)), axis=-1)),
)

# --- optimizers, schedules --------------------------------------------------------------------


def _lr(default: float) -> Param:
    return option("lr", "float", "learning rate: the step size of each update", default, range=GREATER_THAN_ZERO,
                  synonyms=("learning_rate", "rate", "alpha", "step_size"))


_B1 = option("b1", "float", "decay of the first-moment (mean) estimate", 0.9, range=FRACTION, synonyms=("beta1", "beta_1"))
_B2 = option("b2", "float", "decay of the second-moment estimate", 0.999, range=FRACTION, synonyms=("beta2", "beta_2"))
_EPS = option("eps", "float", "added to the denominator for stability", 1e-8, range=GREATER_THAN_ZERO,
              synonyms=("epsilon",))


@dataclass(frozen=True)
class Optimizer(Entry):
    """`build(args, learning_rate, optax)` returns an optax GradientTransformation;
    `slots(args)` is how many parameter-sized arrays its state keeps (for the memory estimate)."""

    build: Callable[[dict, Any, Any], Any] | None = None
    slots: Callable[[dict], int] = lambda a: 0


OPTIMIZERS: tuple[Optimizer, ...] = (
    Optimizer("sgd", "stochastic gradient descent, optionally with (Nesterov) momentum",
              (_lr(0.01), option("momentum", "float", "fraction of the last update kept", 0.0, range=FRACTION),
               option("nesterov", "bool", "Nesterov's look-ahead momentum", False)),
              example="optimizer sgd lr=0.1 momentum=0.9",
              build=lambda a, lr, optax: optax.sgd(lr, momentum=a["momentum"] or None, nesterov=a["nesterov"]),
              slots=lambda a: 1 if a["momentum"] else 0),
    Optimizer("adam", "adaptive moments (Kingma & Ba, 2015)", (_lr(1e-3), _B1, _B2, _EPS),
              example="optimizer adam lr=1e-3",
              build=lambda a, lr, optax: optax.adam(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"]), slots=lambda a: 2),
    Optimizer("adamw", "adam with decoupled weight decay (Loshchilov & Hutter, 2019)",
              (_lr(1e-3), _B1, _B2, _EPS,
               option("weight_decay", "float", "decay applied to the weights each step", 1e-4, range=NON_NEGATIVE,
                      synonyms=("wd", "decay"))),
              example="optimizer adamw lr=1e-3 weight_decay=1e-4",
              build=lambda a, lr, optax: optax.adamw(lr, b1=a["b1"], b2=a["b2"], eps=a["eps"],
                                                     weight_decay=a["weight_decay"]), slots=lambda a: 2),
    Optimizer("adagrad", "per-parameter rates from the sum of squared gradients (Duchi et al., 2011)",
              (_lr(0.01), option("eps", "float", "added to the denominator for stability", 1e-7,
                                 range=GREATER_THAN_ZERO, synonyms=("epsilon",))),
              example="optimizer adagrad lr=0.05",
              build=lambda a, lr, optax: optax.adagrad(lr, eps=a["eps"]), slots=lambda a: 1),
    Optimizer("adadelta", "adagrad with a decaying window, nearly free of a learning rate (Zeiler, 2012)",
              (_lr(1.0), option("rho", "float", "decay of the squared-gradient average", 0.9, range=FRACTION),
               option("eps", "float", "added to the denominator for stability", 1e-6, range=GREATER_THAN_ZERO,
                      synonyms=("epsilon",))),
              example="optimizer adadelta lr=1.0",
              build=lambda a, lr, optax: optax.adadelta(lr, rho=a["rho"], eps=a["eps"]), slots=lambda a: 2),
    Optimizer("rmsprop", "divide by a running average of squared gradients (Hinton, 2012)",
              (_lr(1e-3), option("decay", "float", "decay of the squared-gradient average", 0.9, range=FRACTION,
                                 synonyms=("rho",)),
               option("momentum", "float", "fraction of the last update kept", 0.0, range=FRACTION), _EPS),
              example="optimizer rmsprop lr=1e-3 decay=0.9",
              build=lambda a, lr, optax: optax.rmsprop(lr, decay=a["decay"], eps=a["eps"],
                                                       momentum=a["momentum"] or None),
              slots=lambda a: 2 if a["momentum"] else 1),
)

# Options every optimizer takes besides its own.
OPTIMIZER_COMMON: tuple[Param, ...] = (
    option("clip", "float", "clip the global gradient norm to this value", None, range=GREATER_THAN_ZERO,
           synonyms=("clipnorm", "clip_norm", "max_norm")),
)


@dataclass(frozen=True)
class Schedule(Entry):
    """`build(args, base_lr, total_steps, steps_per_epoch, optax)` returns an optax schedule."""

    build: Callable[..., Any] | None = None


def _steps(name: str, doc: str) -> Param:
    return option(name, "int", doc, None, range=POSITIVE)


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("constant", "the same learning rate throughout", example="schedule constant",
             build=lambda a, lr, total, epoch, optax: optax.constant_schedule(lr)),
    Schedule("exponential", "multiply the rate by `decay_rate` every `decay_steps` steps",
             (option("decay_rate", "float", "factor per `decay_steps`", 0.9, range=Range(lo=0, hi=1, lo_open=True)),
              _steps("decay_steps", "steps per decay (default: one epoch)"),
              option("staircase", "bool", "decay in steps instead of smoothly", False)),
             example="schedule exponential decay_rate=0.9",
             build=lambda a, lr, total, epoch, optax: optax.exponential_decay(
                 lr, a["decay_steps"] or epoch, a["decay_rate"], staircase=a["staircase"])),
    Schedule("cosine", "cosine decay from the rate to `alpha` times it",
             (_steps("decay_steps", "steps to decay over (default: the whole run)"),
              option("alpha", "float", "final rate as a fraction of the first", 0.0, range=Range(lo=0, hi=1))),
             example="schedule cosine",
             build=lambda a, lr, total, epoch, optax: optax.cosine_decay_schedule(
                 lr, a["decay_steps"] or total, alpha=a["alpha"])),
    Schedule("warmup_cosine", "linear warm-up from 0, then cosine decay",
             (_steps("warmup", "warm-up steps (default: one epoch)"),
              _steps("decay_steps", "steps of the whole schedule (default: the whole run)"),
              option("alpha", "float", "final rate as a fraction of the peak", 0.0, range=Range(lo=0, hi=1))),
             example="schedule warmup_cosine warmup=100",
             build=lambda a, lr, total, epoch, optax: optax.warmup_cosine_decay_schedule(
                 0.0, lr, min(a["warmup"] or epoch, max((a["decay_steps"] or total) - 1, 1)),
                 max(a["decay_steps"] or total, 2), end_value=lr * a["alpha"])),
)

# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset(Entry):
    """A built-in dataset's static facts, so that checking never loads it. `load(sklearn.datasets)`
    reads the copy shipped in scikit-learn's wheel (never a download) as `(x, y)`; `file` names that
    copy (rows of features then the class; `header`: a first line of counts and names), which the
    runtime reads directly when it matches these facts, sparing the second it takes to import
    scikit-learn."""

    features: Shape = ()
    classes: int = 0
    examples: int = 0
    load: Callable[[Any], tuple] | None = None
    file: str = ""
    header: bool = True


DATASETS: tuple[Dataset, ...] = (
    Dataset("digits", "8x8 images of handwritten digits, 10 classes (scikit-learn)", example="data digits val=0.1",
            features=(64,), classes=10, examples=1797, load=lambda sk: sk.load_digits(return_X_y=True),
            file="digits.csv.gz", header=False),
    Dataset("iris", "iris flower measurements, 3 species", example="data iris val=0.2",
            features=(4,), classes=3, examples=150, load=lambda sk: sk.load_iris(return_X_y=True), file="iris.csv"),
    Dataset("wine", "chemical analysis of wines, 3 cultivars", example="data wine val=0.2",
            features=(13,), classes=3, examples=178, load=lambda sk: sk.load_wine(return_X_y=True), file="wine_data.csv"),
    Dataset("breast_cancer", "breast mass measurements, malignant or benign", example="data breast_cancer val=0.2",
            features=(30,), classes=2, examples=569,
            load=lambda sk: sk.load_breast_cancer(return_X_y=True), file="breast_cancer.csv"),
)

DATA_OPTIONS: tuple[Param, ...] = (
    option("val", "float", "fraction held out for validation", 0.0, range=FRACTION,
           synonyms=("validation", "validation_split", "val_split")),
    option("test", "float", "fraction held out for the final test", 0.0, range=FRACTION,
           synonyms=("test_split", "test_size")),
    option("normalize", "choice", "feature scaling fitted on the training part", "none",
           choices=("standard", "minmax", "none"), synonyms=("normalise", "scale", "scaling")),
    option("shuffle", "bool", "shuffle the examples before splitting and every epoch", True),
    option("target", "string", "the label column of a CSV file", None, synonyms=("label", "y", "labels")),
)

# --- statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting(Entry):
    """A statement that may appear once. `selects` names the table its first positional picks
    an entry from; that entry's parameters become options of the statement."""

    selects: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("model", "the model's name", (positional("name", "name", "the model's name"),), example="model digits_mlp"),
    Setting("data", "where examples come from", (positional("source", "source", "a built-in dataset or a file"),)
            + DATA_OPTIONS, example="data digits val=0.1 test=0.2"),
    Setting("input", "shape of one example", (positional("shape", "shape", "shape of one example",
                                                         range=POSITIVE),), example="input 8x8x1"),
    Setting("loss", "the training objective", (positional("name", "ref", "the loss", table="loss"),),
            example="loss categorical_crossentropy", selects="loss"),
    Setting("optimizer", "the update rule", (positional("name", "ref", "the optimizer", table="optimizer"),)
            + OPTIMIZER_COMMON, example="optimizer adam lr=1e-3", selects="optimizer"),
    Setting("schedule", "learning-rate schedule", (positional("name", "ref", "the schedule", table="schedule"),),
            example="schedule cosine", selects="schedule"),
    Setting("batch", "mini-batch size", (positional("size", "int", "examples per step", 32, range=POSITIVE),),
            example="batch 32"),
    Setting("epochs", "upper bound on epochs", (positional("count", "int", "epochs", 10, range=POSITIVE),),
            example="epochs 100"),
    Setting("early_stop", "stop when the monitored quantity stops improving",
            (positional("patience", "int", "epochs without improvement before stopping", range=POSITIVE),
             option("monitor", "name", "`loss`, `val_loss`, or a metric, with or without `val_`", "val_loss"),
             option("min_delta", "float", "smallest change that counts as improvement", 0.0, range=NON_NEGATIVE),
             option("restore_best", "bool", "end with the best epoch's weights", True,
                    synonyms=("restore_best_weights",))),
            example="early_stop 5 monitor=val_accuracy"),
    Setting("metrics", "metrics reported besides the loss",
            (positional("names", "ref", "metric names", table="metric", variadic=True),), example="metrics accuracy"),
    Setting("seed", "all randomness: init, shuffling, dropout, splits",
            (positional("value", "int", "the seed", 0, range=Range(lo=0, hi=2**32 - 1)),), example="seed 0"),
)

TABLES: dict[str, tuple[Entry, ...]] = {
    "layer": LAYERS,
    "activation": ACTIVATIONS,
    "initializer": INITIALIZERS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "metric": METRICS,
    "dataset": DATASETS,
    "statement": SETTINGS,
}

_BY_NAME: dict[str, dict[str, Entry]] = {
    table: {alias: e for e in entries for alias in (e.name, *e.aliases)} for table, entries in TABLES.items()
}


def lookup(table: str, name: str) -> Entry | None:
    """The entry called `name` (or one of its aliases) in `table`."""
    return _BY_NAME[table].get(name)


def names(table: str) -> list[str]:
    """Every name of a table, aliases included: the candidates for did-you-mean."""
    return list(_BY_NAME[table])


# The random streams a model's layers may draw from, each seeded while training.
RNG_STREAMS: tuple[str, ...] = tuple(sorted({entry.rng_stream for entry in LAYERS if entry.rng_stream}))


def layer(name: str) -> Layer:
    entry = lookup("layer", name)
    assert isinstance(entry, Layer)
    return entry
