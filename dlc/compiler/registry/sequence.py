"""Sequence layers: a sequence is rank 2, (steps, features). Recurrent layers (Flax's `nn.RNN` over
a cell, `nn.Bidirectional` for both directions), 1-d convolutions and pools, and the global pools
that take a sequence or an image to one value per channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlc.compiler.registry.base import POSITIVE, Shape, ShapeError, option, positional, show_shape
from dlc.compiler.registry.functions import ACTIVATIONS
from dlc.compiler.registry.layers import PADDING, Layer, _with_bias, conv_params

_ACTIVATIONS = {alias: entry for entry in ACTIVATIONS for alias in (entry.name, *entry.aliases)}

# Flax's cells, by layer kind, and the parameters of each on `features` inputs and `units` units,
# by their names under the cell (input kernels `i*` and recurrent ones `h*`, one pair per gate).
CELLS = {"rnn": "SimpleCell", "lstm": "OptimizedLSTMCell", "gru": "GRUCell"}
# Each cell's class, picked from the Flax namespace the lowering passes in (never looked up by name).
CELL_CLASSES = {"lstm": lambda nn: nn.OptimizedLSTMCell, "gru": lambda nn: nn.GRUCell}


def _cell_weights(kind: str, features: int, units: int) -> dict[str, Shape]:
    if kind == "rnn":
        return {"i/kernel": (features, units), "i/bias": (units,), "h/kernel": (units, units)}
    if kind == "lstm":
        return {f"{side}{gate}/{part}": dims for gate in "ifgo" for side, part, dims in
                (("i", "kernel", (features, units)), ("h", "kernel", (units, units)), ("h", "bias", (units,)))}
    gates = {f"i{gate}/{part}": dims for gate in "rzn" for part, dims in
             (("kernel", (features, units)), ("bias", (units,)))}
    return {**gates, **{f"h{gate}/kernel": (units, units) for gate in "rzn"}, "hn/bias": (units,)}


def _need_sequence(shape: Shape, layer: str, image_too: bool = False) -> None:
    if len(shape) == 2 or (image_too and len(shape) == 3):
        return
    takes = "a sequence input (steps x features)" + (" or an image" if image_too else "")
    hint = ("set `input STEPSxFEATURES`, like `input 8x8` for the 64 features of `digits`" if len(shape) == 1
            else "on an image use `conv2d` and `maxpool2d`, or set `input STEPSxFEATURES` to read it as a sequence")
    raise ShapeError("E406", f"`{layer}` needs {takes}, got {show_shape(shape)}", hint)


def _recurrent_shape(kind: str) -> Callable[[Shape, dict], Shape]:
    def rule(shape: Shape, a: dict) -> Shape:
        _need_sequence(shape, kind)
        units = a["units"] * (2 if a["bidirectional"] else 1)
        return (shape[0], units) if a["return_sequences"] else (units,)
    return rule


def _recurrent_weights(kind: str) -> Callable[[Shape, dict], dict[str, Shape]]:
    def weights(shape: Shape, a: dict) -> dict[str, Shape]:
        cell = {f"cell/{name}": dims for name, dims in _cell_weights(kind, shape[-1], a["units"]).items()}
        if not a["bidirectional"]:
            return cell
        return {f"{rnn}/{name}": dims for rnn in ("forward_rnn", "backward_rnn") for name, dims in cell.items()}
    return weights


def _last_of_both(forward: Any, backward: Any, jnp: Any) -> Any:
    """Each direction's last step: the forward's at the end, the backward's (kept in order) at the start."""
    return jnp.concatenate([forward[:, -1], backward[:, 0]], axis=-1)


def _build_recurrent(kind: str) -> Callable[[dict, Any], Any]:
    def build(a: dict, lib: Any) -> Any:
        nn = lib.nn

        def cell() -> Any:
            if kind == "rnn":
                return nn.SimpleCell(a["units"], activation_fn=_ACTIVATIONS[a["activation"]].build(lib), parent=None)
            return CELL_CLASSES[kind](nn)(a["units"], parent=None)

        if a["bidirectional"]:
            merge = {} if a["return_sequences"] else {"merge_fn": lambda f, b: _last_of_both(f, b, lib.jnp)}
            layer = nn.Bidirectional(nn.RNN(cell(), parent=None), nn.RNN(cell(), parent=None), **merge, name=a["name"])
            return lambda x, train: layer(x)
        rnn = nn.RNN(cell(), name=a["name"])
        return lambda x, train: rnn(x) if a["return_sequences"] else rnn(x)[:, -1]
    return build


def _code_recurrent(kind: str) -> Callable[[dict, Any], str]:
    def code(a: dict, src: Any) -> str:
        activation = ""
        if kind == "rnn":
            activation = f", activation_fn=lambda v: {_ACTIVATIONS[a['activation']].code.format(x='v')}"
        cell = f"nn.{CELLS[kind]}({a['units']}{activation}, parent=None)"
        name = f"name=\"{a['name']}\""
        if a["bidirectional"]:
            rnn = f"nn.RNN({cell}, parent=None)"
            merge = "" if a["return_sequences"] else \
                ", merge_fn=lambda *ends: jnp.concatenate([ends[0][:, -1], ends[1][:, 0]], axis=-1)"
            return f"nn.Bidirectional({rnn}, {rnn}{merge}, {name})(x)"
        return f"nn.RNN({cell}, {name})(x)" + ("" if a["return_sequences"] else "[:, -1]")
    return code


def _steps(shape: Shape, a: dict, window_key: str, layer: str) -> int:
    """Output steps of a 1-d convolution or pool (the rules of `lax` VALID and SAME)."""
    _need_sequence(shape, layer)
    window, stride = a[window_key], a["stride"] if a.get("stride") is not None else a[window_key]
    if a["padding"] == "same":
        return -(-shape[0] // stride)
    if window > shape[0]:
        raise ShapeError("E402", f"`{layer}` window {window} is larger than its {shape[0]} steps",
                         "use a smaller window, `padding=same`, or fewer pooling layers before it")
    return (shape[0] - window) // stride + 1


def _windows(a: dict) -> tuple[tuple[int], tuple[int]]:
    return (a["size"],), (a["stride"] if a.get("stride") is not None else a["size"],)


def _build_conv1d(a: dict, lib: Any) -> Any:
    conv = lib.nn.Conv(a["filters"], (a["kernel"],), strides=(a["stride"],), use_bias=a["bias"],
                       padding=a["padding"].upper(), kernel_init=lib.initializer(a["init"]), name=a["name"])
    return lambda x, train: conv(x)


def _code_conv1d(a: dict, src: Any) -> str:
    return (f"nn.Conv({a['filters']}, ({a['kernel']},), strides=({a['stride']},), use_bias={a['bias']}, "
            f"padding=\"{a['padding'].upper()}\", kernel_init={src.initializer(a['init'])}, name=\"{a['name']}\")(x)")


def _pool1d(kind: str, function: str, pick: Callable[[Any], Any]) -> Layer:
    """A 1-d pool: `function` is Flax's pool as the emitted code names it, `pick` takes it from `nn`."""
    def build(a: dict, lib: Any) -> Any:
        window, strides = _windows(a)
        pool = pick(lib.nn)
        return lambda x, train: pool(x, window, strides=strides, padding=a["padding"].upper())

    def code(a: dict, src: Any) -> str:
        window, strides = _windows(a)
        return f"nn.{function}(x, {window}, strides={strides}, padding=\"{a['padding'].upper()}\")"

    verb = "keep the largest value" if function == "max_pool" else "average the values"
    return Layer(kind, f"{verb} of each window of steps",
                 (positional("size", "int", "window size in steps", range=POSITIVE),
                  option("stride", "int", "step between windows (default: the window size)", None, range=POSITIVE),
                  PADDING),
                 example=f"{kind} 2",
                 shape=lambda s, a: (_steps(s, a, "size", kind), s[1]), build=build, code=code)


def _global_pool(kind: str, function: str, pick: Callable[[Any], Any], verb: str) -> Layer:
    """A global pool: `function` is the jnp reduction as the emitted code names it, `pick` takes it from `jnp`."""
    def shape(s: Shape, a: dict) -> Shape:
        _need_sequence(s, kind, image_too=True)
        return (s[-1],)

    def build(a: dict, lib: Any) -> Any:
        reduce = pick(lib.jnp)
        return lambda x, train: reduce(x, axis=tuple(range(1, x.ndim - 1)))

    return Layer(kind, f"{verb} each channel over all steps (or all positions of an image)",
                 example=kind, shape=shape, build=build,
                 code=lambda a, src: f"jnp.{function}(x, axis=tuple(range(1, x.ndim - 1)))")


RECURRENT_OPTIONS = (
    option("return_sequences", "bool", "give the output of every step (steps x UNITS), not only the last", False),
    option("bidirectional", "bool", "also read the sequence backwards, and join both outputs (2 x UNITS)", False),
)
UNITS = positional("units", "int", "number of units of the state", range=POSITIVE)


def _recurrent(kind: str, doc: str, example: str, *params: Any) -> Layer:
    return Layer(kind, doc, (UNITS, *params, *RECURRENT_OPTIONS), example=example,
                 shape=_recurrent_shape(kind), weights=_recurrent_weights(kind),
                 build=_build_recurrent(kind), code=_code_recurrent(kind))


SEQUENCE_LAYERS: tuple[Layer, ...] = (
    Layer("conv1d", "a 1-d convolution over the steps of a sequence",
          conv_params(positional("kernel", "int", "kernel size in steps", range=POSITIVE), "int"),
          example="conv1d 8 3 relu padding=same",
          shape=lambda s, a: (_steps(s, a, "kernel", "conv1d"), a["filters"]),
          weights=lambda s, a: _with_bias({"kernel": (a["kernel"], s[1], a["filters"])}, a, a["filters"]),
          build=_build_conv1d, code=_code_conv1d, activates=True, per_step_on_cpu=True),
    _pool1d("maxpool1d", "max_pool", lambda nn: nn.max_pool),
    _pool1d("avgpool1d", "avg_pool", lambda nn: nn.avg_pool),
    _recurrent("rnn", "a simple recurrent layer: its state is the activation of the input and the last state",
               "rnn 8 return_sequences=true",
               positional("activation", "ref", "activation of the state", "tanh", table="activation")),
    _recurrent("lstm", "a long short-term memory layer (Flax's `OptimizedLSTMCell`)",
               "lstm 8 return_sequences=true bidirectional=true"),
    _recurrent("gru", "a gated recurrent unit layer (Flax's `GRUCell`)", "gru 8 return_sequences=true"),
    _global_pool("global_avgpool", "mean", lambda jnp: jnp.mean, "average"),
    _global_pool("global_maxpool", "max", lambda jnp: jnp.max, "keep the largest value of"),
)
