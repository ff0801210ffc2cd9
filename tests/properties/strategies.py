"""Hypothesis strategies for the front end, built from the registry so that a new layer,
option or optimizer is generated as soon as it is declared.

- `specs()`: ASTs of registry statements with type-correct values (ranges ignored),
  nested blocks included: for print/parse round trips.
- `valid_specs()`: spec text that must check clean, with its parameter count worked out
  here, independently of the registry's count functions.
- `texts()`, `mutated()`: arbitrary and nearly valid text, for "never raises" properties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import assume
from hypothesis import strategies as st

from dlc.compiler import registry as reg
from dlc.grammar import nodes as n
from dlc.grammar.printer import print_spec

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "contract"
SHIPPED_SPECS = sorted((REPO / "specs").glob("*.dl")) + sorted(CONTRACT.glob("*/*.dl"))

# --- values of any kind ---------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(lambda s: s not in ("true", "false"))
ints = st.integers(min_value=-(10**20), max_value=10**20).map(n.Int)
floats = st.floats(allow_nan=False, allow_infinity=False).map(n.Float)
shapes = st.lists(st.integers(0, 10**6), min_size=2, max_size=5).map(lambda dims: n.Shape(tuple(dims)))
# What a string literal can hold: anything but a line break or a control character (an error),
# with quotes, backslashes and the blanks that are allowed weighted in.
_string_chars = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('"\\\t\r\f')
strs = st.text(_string_chars, max_size=12).map(n.Str)
bools = st.booleans().map(n.Bool)
name_values = names.map(n.Name)
scalars = st.one_of(ints, floats, shapes, strs, bools, name_values)


def lists_of(items: st.SearchStrategy[n.Value]) -> st.SearchStrategy[n.List]:
    """A sweep axis of `items`."""
    return st.lists(items, max_size=4).map(lambda values: n.List(tuple(values)))


values = scalars | lists_of(scalars)

# --- registry-shaped ASTs -------------------------------------------------------------------


def names_in(table: str) -> st.SearchStrategy[n.Name]:
    return st.sampled_from(reg.names(table)).map(n.Name)


def of_kind(param: reg.Param) -> st.SearchStrategy[n.Value]:
    """A value of the parameter's type, in or out of its range; sometimes a sweep of them."""
    one = {
        "int": ints,
        "float": floats | ints,
        "bool": bools,
        "name": name_values,
        "string": strs,
        "shape": shapes | ints,
        "size": ints | shapes,
        "choice": st.sampled_from(param.choices).map(n.Name),
        "ref": names_in(param.table) if param.table else name_values,
        "source": names_in("dataset") | strs,
    }[param.kind]
    return st.one_of(one, lists_of(one)) if param.kind != "bool" else one


@st.composite
def statement_of(draw: st.DrawFn, entry: reg.Entry, depth: int) -> n.Statement:
    """A statement of a registry entry: a prefix of its positionals, a subset of its options."""
    slots = entry.positionals
    options = list(entry.options)
    if isinstance(entry, reg.Setting) and entry.selects:
        chosen = draw(st.sampled_from(reg.TABLES[entry.selects]))
        options += [p for p in chosen.params if p.name not in {o.name for o in options}]
        positionals = [n.Name(chosen.name)]
        slots = slots[1:]
    else:
        positionals = []
    for slot in slots[: draw(st.integers(0, len(slots)))]:
        count = draw(st.integers(1, 3)) if slot.variadic else 1
        positionals += [draw(of_kind(slot)) for _ in range(count)]
    picked = draw(st.lists(st.sampled_from(options), unique_by=lambda p: p.name, max_size=3)) if options else []
    block = None
    is_layer = isinstance(entry, reg.Layer)
    if is_layer and entry.block:
        block = tuple(draw(st.lists(layer_statements(depth - 1), max_size=3))) if depth > 0 else ()
    return n.Statement(
        entry.name,
        tuple(positionals),
        tuple(n.Option(p.name, draw(of_kind(p))) for p in picked),
        block,
        layer_prefix=is_layer and draw(st.booleans()),
    )


def layer_statements(depth: int = 2) -> st.SearchStrategy[n.Statement]:
    return st.sampled_from(reg.LAYERS).flatmap(lambda layer: statement_of(layer, depth))


def registry_statements(depth: int = 2) -> st.SearchStrategy[n.Statement]:
    return st.sampled_from(reg.SETTINGS).flatmap(lambda s: statement_of(s, depth)) | layer_statements(depth)


def specs(max_statements: int = 8) -> st.SearchStrategy[n.Spec]:
    return st.lists(registry_statements(), max_size=max_statements).map(lambda s: n.Spec(tuple(s)))


# --- valid specs, values drawn from each parameter's range ------------------------------------


def in_range(param: reg.Param, cap: int = 64) -> st.SearchStrategy[n.Value]:
    """A value the checker must accept for `param` (numbers within its range, capped above)."""
    r = param.range or reg.Range()
    if param.kind == "int":
        lo = 0 if r.lo is None else (math.floor(r.lo) + 1 if r.lo_open else math.ceil(r.lo))
        hi = lo + cap if r.hi is None else min((math.ceil(r.hi) - 1 if r.hi_open else math.floor(r.hi)), lo + cap)
        return st.integers(lo, hi).map(n.Int)
    if param.kind == "float":
        lo = -float(cap) if r.lo is None else r.lo
        hi = float(cap) if r.hi is None else r.hi
        return st.floats(lo, hi, exclude_min=r.lo_open, exclude_max=r.hi_open).map(n.Float)
    if param.kind == "bool":
        return bools
    if param.kind == "choice":
        return st.sampled_from(param.choices).map(n.Name)
    if param.kind == "ref":
        return names_in(param.table)
    raise ValueError(f"no in-range strategy for `{param.name}` of kind `{param.kind}`")


@st.composite
def options_in_range(draw: st.DrawFn, params: tuple[reg.Param, ...]) -> tuple[n.Option, ...]:
    picked = draw(st.lists(st.sampled_from(params), unique_by=lambda p: p.name)) if params else []
    return tuple(n.Option(p.name, draw(in_range(p))) for p in picked)


def _setting(name: str) -> reg.Setting:
    entry = reg.lookup("statement", name)
    assert isinstance(entry, reg.Setting)
    return entry


@dataclass(frozen=True)
class ValidSpec:
    text: str
    params: int  # trainable parameters, counted by `count_params` below
    classes: int


def count_params(layers: tuple[n.Statement, ...], width: int) -> tuple[int, int]:
    """(trainable parameters, output width) of flat layers, by the textbook formulas."""
    total = 0
    for layer in layers:
        if layer.keyword == "dense":
            units = layer.positionals[0].value
            bias = layer.option("bias").value.value if layer.option("bias") else True
            total += width * units + (units if bias else 0)
            width = units
        elif layer.keyword in ("layernorm", "batchnorm"):
            total += 2 * width  # a scale and an offset per feature
        elif layer.keyword in ("repeat", "residual"):
            times = layer.positionals[0].value if layer.keyword == "repeat" else 1
            for _ in range(times):
                params, width = count_params(layer.block, width)
                total += params
    return total, width


@st.composite
def flat_layer(draw: st.DrawFn, kind: str, units: int | None = None) -> n.Statement:
    """A layer that takes and gives a flat input, every argument drawn from its range."""
    layer = reg.layer(kind)
    positionals = []
    for slot in layer.positionals:
        if slot.required or draw(st.booleans()):
            positionals.append(n.Int(units) if units is not None and slot.name == "units" else draw(in_range(slot)))
    return n.Statement(
        kind, tuple(positionals), draw(options_in_range(layer.options)), layer_prefix=draw(st.booleans())
    )


FLAT_LAYERS = ("dense", "dropout", "activation", "layernorm", "batchnorm", "flatten")


@st.composite
def hidden_layers(draw: st.DrawFn, width: int, depth: int = 1) -> tuple[n.Statement, ...]:
    """A stack of flat layers, with `residual` blocks that keep `width` and `repeat` blocks."""
    out: list[n.Statement] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(FLAT_LAYERS + (("residual", "repeat") if depth > 0 else ())))
        if kind == "residual":
            body = draw(hidden_layers(width, depth - 1)) + (draw(flat_layer("dense", units=width)),)
            assume(width > 1 or not _sums_to_one(body[-1]))  # the block's last layer: E405 too
            out.append(n.Statement("residual", block=body))
        elif kind == "repeat":
            times = draw(st.integers(1, 3))
            body = draw(hidden_layers(width, depth - 1))
            # A later copy takes the block's output width, which the body was not drawn for.
            assume(times == 1 or not any(_sums_to_one(layer) for layer in _expanded(body)))
            out.append(n.Statement("repeat", (n.Int(times),), block=body))
        else:
            out.append(draw(flat_layer(kind)))
        width = count_params(out[-1:], width)[1]
        assume(width > 1 or not _sums_to_one(out[-1]))  # a softmax over one unit is an error (E405)
    return tuple(out)


def _expanded(layers: tuple[n.Statement, ...]):
    """Every statement of `layers`, those inside blocks too."""
    for layer in layers:
        yield layer
        yield from _expanded(layer.block or ())


def _sums_to_one(layer: n.Statement) -> bool:
    """Whether the layer applies an activation whose outputs sum to 1 over the last axis."""
    return any(isinstance(value, n.Name) and getattr(reg.lookup("activation", value.value), "sums_to_one", False)
               for value in layer.positionals)


@st.composite
def valid_specs(draw: st.DrawFn) -> ValidSpec:
    """A classifier over a built-in dataset or a flat `input`, with every setting drawn from
    the registry: optimizer, schedule and their options, batch, epochs, metrics, seed."""
    dataset = draw(st.none() | st.sampled_from(reg.DATASETS))
    settings: list[n.Statement] = [n.Statement("model", (draw(name_values),))]
    if dataset is None:
        width, classes, has_val = draw(st.integers(1, 32)), draw(st.integers(2, 12)), False
        settings.append(n.Statement("input", (n.Int(width),)))
    else:
        width, classes = math.prod(dataset.features), dataset.classes
        val, test = draw(st.floats(0, 0.45)), draw(st.floats(0, 0.45))
        has_val = val > 0
        options = draw(options_in_range(tuple(p for p in reg.DATA_OPTIONS if p.kind in ("bool", "choice")
                                              and p.name not in reg.CSV_OPTIONS)))  # a built-in is no CSV
        settings.append(
            n.Statement(
                "data",
                (n.Name(dataset.name),),
                (n.Option("val", n.Float(val)), n.Option("test", n.Float(test))) + options,
            )
        )
    categorical = [name for name in reg.names("loss") if reg.lookup("loss", name).task == "categorical"]
    settings.append(n.Statement("loss", (n.Name(draw(st.sampled_from(categorical))),)))
    optimizer = draw(st.sampled_from(reg.OPTIMIZERS))
    settings.append(
        n.Statement(
            "optimizer", (n.Name(optimizer.name),), draw(options_in_range(optimizer.params + reg.OPTIMIZER_COMMON))
        )
    )
    if draw(st.booleans()):
        schedule = draw(st.sampled_from(reg.SCHEDULES))
        settings.append(n.Statement("schedule", (n.Name(schedule.name),), draw(options_in_range(schedule.params))))
    for name in ("batch", "epochs", "seed"):
        if draw(st.booleans()):
            settings.append(n.Statement(name, (draw(in_range(_setting(name).positionals[0])),)))
    # The loss is categorical: a metric of binary classifiers only (`auc`) would be an error.
    metrics = draw(st.lists(st.sampled_from([m.name for m in reg.METRICS if not m.needs_binary]), unique=True,
                            min_size=1))
    settings.append(n.Statement("metrics", tuple(n.Name(m) for m in metrics)))
    if draw(st.booleans()):
        monitors = ["loss", *metrics] + (["val_loss", *(f"val_{m}" for m in metrics)] if has_val or not dataset else [])
        early = _setting("early_stop")
        settings.append(
            n.Statement(
                "early_stop",
                (draw(in_range(early.positionals[0])),),
                (n.Option("monitor", n.Name(draw(st.sampled_from(monitors)))),)
                + draw(options_in_range(tuple(p for p in early.options if p.name != "monitor"))),
            )
        )
    layers = draw(hidden_layers(width)) + (n.Statement("dense", (n.Int(classes), n.Name("softmax"))),)
    settings = draw(st.permutations(settings))
    split = draw(st.integers(0, len(settings)))
    spec = n.Spec(tuple(settings[:split]) + layers + tuple(settings[split:]))
    return ValidSpec(print_spec(spec), count_params(layers, width)[0], classes)


@st.composite
def swept_specs(draw: st.DrawFn) -> str:
    """A valid spec with one of its values (a setting's or a layer's, positional or option) replaced by
    a list: the value itself among up to three others of any kind, in or out of range."""
    from dlc.grammar.parse import parse

    spec, _ = parse(draw(valid_specs()).text)
    statements = [s for s in spec.statements if isinstance(s, n.Statement) and (s.positionals or s.options)]
    at = draw(st.integers(0, len(statements) - 1))
    statement = statements[at]
    slot = draw(st.integers(0, len(statement.positionals) + len(statement.options) - 1))
    positional = slot < len(statement.positionals)
    original = statement.positionals[slot] if positional else statement.options[slot - len(statement.positionals)].value
    items = draw(st.lists(st.just(original) | scalars, min_size=1, max_size=4))
    swept = n.List(tuple(draw(st.permutations([original, *items[1:]]))))
    if positional:
        changed = replace(statement, positionals=statement.positionals[:slot] + (swept,) + statement.positionals[slot + 1:])
    else:
        k = slot - len(statement.positionals)
        changed = replace(statement, options=statement.options[:k] + (replace(statement.options[k], value=swept),)
                          + statement.options[k + 1:])
    return print_spec(replace(spec, statements=tuple(changed if s is statement else s for s in spec.statements)))


# --- arbitrary and nearly valid text -------------------------------------------------------

# Pieces of the language, so that random text often gets deep into the parser.
FRAGMENTS = (
    "dense",
    "64",
    "relu",
    "layer",
    "repeat",
    "residual",
    "input",
    "data",
    "digits",
    "loss",
    "optimizer",
    "adam",
    "lr=",
    "=",
    "1e-3",
    "-0.5",
    ".5",
    "2.",
    "3x3",
    "60_000",
    "1__0",
    "true",
    '"',
    "\\",
    '"a\\"b"',
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    "\n",
    "\r\n",
    " ",
    "\t",
    "#",
    "\x00",
    "\ufeff",
    "é",
    "x",
)
texts = st.lists(st.sampled_from(FRAGMENTS) | st.characters(), max_size=80).map("".join) | st.text(max_size=200)


@st.composite
def mutated(draw: st.DrawFn, sources: tuple[str, ...]) -> str:
    """One of `sources` after a few random edits: inserts, deletions, swaps and duplications."""
    text = draw(st.sampled_from(sources))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        edit = draw(st.sampled_from(("insert", "delete", "swap", "duplicate")))
        if edit == "insert":
            text = text[:i] + draw(st.sampled_from(FRAGMENTS) | st.characters()) + text[i:]
        elif edit == "delete":
            text = text[:i] + text[j:]
        elif edit == "swap":
            if i < j < len(text):
                text = text[:i] + text[j] + text[i + 1 : j] + text[i] + text[j + 1 :]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text
