"""Sequence layers: a sequence is rank 2, (steps, features). The embedding of integer token ids,
recurrent layers (Flax's `nn.RNN` over a cell, `nn.Bidirectional` for both directions), 1-d
convolutions and pools, and the global pools that take a sequence or an image to one value per channel.

Padding: token ids pad a sequence at its end with id 0. The embedding starts a padding mask, true
at every step up to the last token that is not 0 (and at the first step always, so that an empty
text reads as one padding token); it travels through the layers that keep the steps in place
(`steps_kept`) and is dropped by any other (a `padding=valid` convolution, a pool, a recurrent layer
without `return_sequences`). Recurrent layers given the mask read each sequence to its length
(`seq_lengths`: the backward direction starts at the last token, the last output is at the last
token), and the global pools average or take the largest value over the real steps only. So the
same text with more padding gives the same outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlc.compiler.registry.base import POSITIVE, Shape, ShapeError, option, positional, show_shape
from dlc.compiler.registry.functions import ACTIVATIONS
from dlc.compiler.registry.layers import KERNEL_PENALTIES, PADDING, Layer, _with_bias, conv_params

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


# --- the padding mask: each function as the lowering runs it, then as `--emit py` writes it --------


def padding_mask(tokens: Any, jnp: Any) -> Any:
    """(batch, steps): true up to each sequence's last token that is not 0, and at its first step (an
    empty text is one step long, so that lengths are at least 1 and a masked mean divides by 1 or more)."""
    steps = jnp.arange(tokens.shape[1])
    last = jnp.max(jnp.where(tokens != 0, steps, 0), axis=1)
    return steps <= last[:, None]


def last_step(y: Any, mask: Any, jnp: Any) -> Any:
    return jnp.take_along_axis(y, (jnp.sum(mask, axis=1) - 1)[:, None, None], axis=1)[:, 0]


def both_ends(y: Any, mask: Any, jnp: Any) -> Any:
    units = y.shape[-1] // 2
    return jnp.concatenate([last_step(y[..., :units], mask, jnp), y[:, 0, units:]], axis=-1)


def masked_mean(x: Any, mask: Any, jnp: Any) -> Any:
    return jnp.sum(jnp.where(mask[..., None], x, 0), axis=1) / jnp.sum(mask, axis=1)[:, None]


def masked_max(x: Any, mask: Any, jnp: Any) -> Any:
    return jnp.max(jnp.where(mask[..., None], x, -jnp.inf), axis=1)


MASK_CODE = '''
def padding_mask(tokens):
    """True at each step up to the last token that is not padding (id 0), and at the first step."""
    steps = jnp.arange(tokens.shape[1])
    last = jnp.max(jnp.where(tokens != 0, steps, 0), axis=1)
    return steps <= last[:, None]


def last_step(y, mask):
    """Each sequence's output at its last token."""
    return jnp.take_along_axis(y, (jnp.sum(mask, axis=1) - 1)[:, None, None], axis=1)[:, 0]


def both_ends(y, mask):
    """Both directions' last outputs: the forward's at the last token, the backward's at the first step."""
    units = y.shape[-1] // 2
    return jnp.concatenate([last_step(y[..., :units], mask), y[:, 0, units:]], axis=-1)


def masked_mean(x, mask):
    """The mean over the steps up to the last token."""
    return jnp.sum(jnp.where(mask[..., None], x, 0), axis=1) / jnp.sum(mask, axis=1)[:, None]


def masked_max(x, mask):
    """The largest value over the steps up to the last token."""
    return jnp.max(jnp.where(mask[..., None], x, -jnp.inf), axis=1)
'''


def _build_recurrent(kind: str) -> Callable[[dict, Any], Any]:
    def build(a: dict, lib: Any) -> Any:
        nn, jnp = lib.nn, lib.jnp

        def cell() -> Any:
            if kind == "rnn":
                return nn.SimpleCell(a["units"], activation_fn=_ACTIVATIONS[a["activation"]].build(lib), parent=None)
            return CELL_CLASSES[kind](nn)(a["units"], parent=None)

        if a["masked"]:  # read each sequence to its last token
            rnn = (nn.Bidirectional(nn.RNN(cell(), parent=None), nn.RNN(cell(), parent=None), name=a["name"])
                   if a["bidirectional"] else nn.RNN(cell(), name=a["name"]))
            ends = both_ends if a["bidirectional"] else last_step

            def apply(x: Any, train: bool, mask: Any) -> Any:
                y = rnn(x, seq_lengths=jnp.sum(mask, axis=1))
                return y if a["return_sequences"] else ends(y, mask, jnp)
            return apply
        if a["bidirectional"]:
            merge = {} if a["return_sequences"] else {"merge_fn": lambda f, b: _last_of_both(f, b, jnp)}
            layer = nn.Bidirectional(nn.RNN(cell(), parent=None), nn.RNN(cell(), parent=None), **merge, name=a["name"])
            return lambda x, train, mask: layer(x)
        rnn = nn.RNN(cell(), name=a["name"])
        return lambda x, train, mask: rnn(x) if a["return_sequences"] else rnn(x)[:, -1]
    return build


def _code_recurrent(kind: str) -> Callable[[dict, Any], str | tuple[str, ...]]:
    def code(a: dict, src: Any) -> str | tuple[str, ...]:
        activation = ""
        if kind == "rnn":
            activation = f", activation_fn=lambda v: {_ACTIVATIONS[a['activation']].code.format(x='v')}"
        cell = f"nn.{CELLS[kind]}({a['units']}{activation}, parent=None)"
        name = f"name=\"{a['name']}\""
        rnn = f"nn.RNN({cell}, parent=None)"
        if a["masked"]:
            layer = f"nn.Bidirectional({rnn}, {rnn}, {name})" if a["bidirectional"] else f"nn.RNN({cell}, {name})"
            out = f"{layer}(x, seq_lengths=jnp.sum(mask, axis=1))"
            return out if a["return_sequences"] else (out, f"{'both_ends' if a['bidirectional'] else 'last_step'}(x, mask)")
        if a["bidirectional"]:
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
                 shape=lambda s, a: (_steps(s, a, "size", kind), s[1]), build=build, code=code, steps_kept=_in_place)


def _global_pool(kind: str, function: str, pick: Callable[[Any], Any], masked: Callable[..., Any],
                 verb: str) -> Layer:
    """A global pool: `function` is the jnp reduction as the emitted code names it, `pick` takes it
    from `jnp`; `masked` is its reduction over the real steps of a padded sequence."""
    def shape(s: Shape, a: dict) -> Shape:
        _need_sequence(s, kind, image_too=True)
        return (s[-1],)

    def build(a: dict, lib: Any) -> Any:
        if a["masked"]:
            return lambda x, train, mask: masked(x, mask, lib.jnp)
        reduce = pick(lib.jnp)
        return lambda x, train, mask: reduce(x, axis=tuple(range(1, x.ndim - 1)))

    def code(a: dict, src: Any) -> str:
        return f"{masked.__name__}(x, mask)" if a["masked"] else f"jnp.{function}(x, axis=tuple(range(1, x.ndim - 1)))"

    return Layer(kind, f"{verb} each channel over all steps (or all positions of an image); over a padded "
                       "sequence of tokens, over its steps up to its last token",
                 example=kind, shape=shape, build=build, code=code, masked=True)


RECURRENT_OPTIONS = (
    option("return_sequences", "bool", "give the output of every step (steps x UNITS), not only the last", False),
    option("bidirectional", "bool", "also read the sequence backwards, and join both outputs (2 x UNITS)", False),
)
UNITS = positional("units", "int", "number of units of the state", range=POSITIVE)


def _recurrent(kind: str, doc: str, example: str, *params: Any) -> Layer:
    return Layer(kind, doc + "; on a padded sequence of tokens it reads each sequence to its last token",
                 (UNITS, *params, *RECURRENT_OPTIONS, *KERNEL_PENALTIES), example=example,
                 shape=_recurrent_shape(kind), weights=_recurrent_weights(kind),
                 build=_build_recurrent(kind), code=_code_recurrent(kind), masked=True,
                 steps_kept=lambda a: a["return_sequences"])


def _in_place(a: dict) -> bool:
    """Whether a 1-d window keeps each step where it was: `padding=same` at stride 1."""
    return a["padding"] == "same" and (a["stride"] if a.get("stride") is not None else a.get("size", 1)) == 1


def _embedding_shape(shape: Shape, a: dict) -> Shape:
    if len(shape) != 1:
        raise ShapeError("E407", f"`embedding` takes a sequence of token ids (steps), got {show_shape(shape)}",
                         "set `input STEPS`, like `input 100`, one token id per step")
    return (shape[0], a["dim"])


EMBEDDING = Layer(
    "embedding", "a learned vector for each token id: integer ids (steps) become (steps x DIM) (Flax's "
    "`nn.Embed`); it must be the first layer, and starts the padding mask (id 0 pads the end)",
    (positional("vocab", "int", "number of token ids it has a vector for, the reserved ones (0 = padding, "
                "1 = unknown) included: at least the data's `vocab`", range=POSITIVE),
     positional("dim", "int", "size of each token's vector", range=POSITIVE), *KERNEL_PENALTIES),
    example="embedding 100 8",
    shape=_embedding_shape, weights=lambda s, a: {"embedding": (a["vocab"], a["dim"])},
    build=lambda a, lib: (lambda embed: lambda x, train: embed(x))(lib.nn.Embed(a["vocab"], a["dim"], name=a["name"])),
    code=lambda a, src: f"nn.Embed({a['vocab']}, {a['dim']}, name=\"{a['name']}\")(x)",
    takes_tokens=lambda a: a["vocab"], steps_kept=lambda a: True)


SEQUENCE_LAYERS: tuple[Layer, ...] = (
    EMBEDDING,
    Layer("conv1d", "a 1-d convolution over the steps of a sequence",
          conv_params(positional("kernel", "int", "kernel size in steps", range=POSITIVE), "int"),
          example="conv1d 8 3 relu padding=same",
          shape=lambda s, a: (_steps(s, a, "kernel", "conv1d"), a["filters"]),
          weights=lambda s, a: _with_bias({"kernel": (a["kernel"], s[1], a["filters"])}, a, a["filters"]),
          build=_build_conv1d, code=_code_conv1d, activates=True, per_step_on_cpu=True, steps_kept=_in_place),
    _pool1d("maxpool1d", "max_pool", lambda nn: nn.max_pool),
    _pool1d("avgpool1d", "avg_pool", lambda nn: nn.avg_pool),
    _recurrent("rnn", "a simple recurrent layer: its state is the activation of the input and the last state",
               "rnn 8 return_sequences=true",
               positional("activation", "ref", "activation of the state", "tanh", table="activation")),
    _recurrent("lstm", "a long short-term memory layer (Flax's `OptimizedLSTMCell`)",
               "lstm 8 return_sequences=true bidirectional=true"),
    _recurrent("gru", "a gated recurrent unit layer (Flax's `GRUCell`)", "gru 8 return_sequences=true"),
    _global_pool("global_avgpool", "mean", lambda jnp: jnp.mean, masked_mean, "average"),
    _global_pool("global_maxpool", "max", lambda jnp: jnp.max, masked_max, "keep the largest value of"),
)
