"""The language reference (docs/language.md), generated from the registry so that it cannot drift
from what the checker accepts. Regenerate it with

    python -m dlc.compiler.reference > docs/language.md

The prose here is only what the registry cannot say: how a spec is read and the rules that
relate statements to each other. Pure Python: reading the registry imports no JAX.
"""

from __future__ import annotations

import re
import sys

from dlc.compiler import registry as reg
from dlc.compiler.registry import REQUIRED, Entry, Param

COMMAND = "python -m dlc.compiler.reference > docs/language.md"

# The section each name table is listed in: a `ref` parameter links to it.
SECTIONS = {
    "layer": "Layers",
    "activation": "Activations",
    "initializer": "Initializers",
    "loss": "Losses",
    "metric": "Metrics",
    "optimizer": "Optimizers",
    "schedule": "Schedules",
    "dataset": "Built-in datasets",
    "statement": "Statements",
}

INTRO = """\
A spec is a list of statements. This page lists every statement, layer, activation,
initializer, loss, metric, optimizer, schedule and built-in dataset with its parameters, their
kinds, defaults and ranges. The language contract is `LANGUAGE.md` (in the shared folder beside
this repository); this page never contradicts it. Diagnostics are explained in
[errors.md](errors.md) and by `dlc explain CODE`.

## Reading a spec

- A statement is `keyword positional* option*`: a keyword, then values in order, then options
  written `name=value` with no spaces around `=`. A positional after an option is an error.
- Statements are separated by newlines or `;`; empty statements are allowed. `#` starts a comment
  that runs to the end of the line. Keywords and names are lowercase and case-sensitive.
- Values: integers `64`, `60_000`; floats `0.5`, `.5`, `1e-3`, `2.`; either may carry a sign
  (`-1`), and the parameter's range decides whether it is allowed; shapes `28x28x1`, `3x3`;
  strings in double quotes `"data/train.csv"` (escapes `\\"` and `\\\\`); booleans `true` and
  `false`; names `relu`, `val_loss`.
- A list `[1e-3, 1e-2]` where one value is expected asks for a sweep: one member per element,
  and with several lists one per combination (the last list varying fastest), at most 1,024
  (E311). Every member is checked as the spec written with its values; an error is reported once,
  at the value that causes it. Members that differ only in parameters marked *shared program*
  below change no shape, and train as one vmapped program, each member on its own split when its
  seed draws one. `dlc run` writes a run folder per member, `sweep.csv` and `sweep.png`.
- `repeat N { ... }` and `residual { ... }` hold layers, separated as above, and may nest.
- Layers may be written with or without the word `layer`: `dense 64 relu` is
  `layer dense 64 relu`.

## Rules between statements

Every value must have its parameter's kind and lie in its range, and every name must be one the
tables below list (a close misspelling gets a suggestion). Beyond single values:

- Each setting appears at most once; layers run in the order written.
- Shapes are inferred layer by layer from `input`, or from the data when `input` is absent.
  Image layers (`conv2d`, pools) need height x width x channels; `dense` needs a flat input;
  a window may not be larger than its input; a `residual` block must keep its input's shape.
- The last layer must fit the loss and the data: one unit per class for
  `categorical_crossentropy`, one unit (or one per label) for `binary_crossentropy`, the
  target's width for a regression loss.
- `accuracy` needs a classification loss. `early_stop` may monitor `loss`, `val_loss` or a
  listed metric with or without `val_`; a `val_` monitor needs validation data.
- Every error is reported in one pass, each at the smallest piece of source that is wrong, and
  one cause is one error: a statement that depends on a broken one is not blamed for it.

## Kinds of value

The *kind* column of each table below says what a parameter takes:
"""

STATEMENTS_INTRO = """\
Settings configure the model and its training; each may appear at most once, anywhere in the
spec. When a setting is absent: `model` is the file's stem; `input` is taken from `data`; with
neither, shapes are checked once arrays arrive through the Python API, and `dlc check` warns;
without `loss` or `optimizer`, `dlc check` warns and training refuses to start; `schedule` is
`constant`; `early_stop` is off; only the loss is reported; `batch`, `epochs` and `seed` take
the default of their value.
"""

LAYERS_INTRO = """\
Layers run in the order written; each takes the previous layer's output. The word `layer` in
front is optional.
"""

DATA_INTRO = """\
`data` names a built-in dataset or a file path in double quotes. A relative path is resolved
against the spec file's folder. A `.npz` file holds arrays `x` and `y`, and optionally `x_val`,
`y_val`, `x_test`, `y_test`; a `.csv` file has a header row, `target="COLUMN"` names the label
column, and every other column is a feature: a number, or, when one of its training values is not a
number, a category, one-hot over the training split's categories (`dlc compile` shows each one's
width); `missing=` says what a missing cell becomes, and `text="COLUMN"` reads a column of text as
integer token ids instead (the vocabulary built on the training split, saved with the run).
At `dlc eval` and `dlc predict`, a CSV's columns are found by their header names. The options of `data` are listed under
[`data` statement](#data-statement). Built-in datasets ship inside scikit-learn's wheel: nothing
is downloaded, and `dlc check` knows their shapes without loading them.
"""

# An option's value in a synopsis, where the kind's own name would not say it: `init=NAME`.
PLACEHOLDERS = {"ref": "NAME"}

TASKS = {
    "categorical": "classification: integer class labels",
    "binary": "0 or 1 for each output unit",
    "regression": "real-valued targets",
}


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _link(title: str) -> str:
    return f"[{title}](#{_anchor(title)})"


def _number(x: float) -> str:
    """Python's shortest form, exponent without padding: `1e-8`, not `1e-08`."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(x))


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "`true`" if v else "`false`"
    if isinstance(v, float):
        return f"`{_number(v)}`"
    return f"`{v}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _kind(p: Param) -> str:
    if p.kind == "ref":
        return f"ref: {_link(SECTIONS[p.table])}"
    if p.kind == "choice":
        return "choice: " + ", ".join(f"`{c}`" for c in p.choices)
    if p.kind == "source":
        return f"source: {_link(SECTIONS['dataset'])} or file"
    return p.kind


def _default(p: Param) -> str:
    if p.default is REQUIRED:
        return "required"
    return "—" if p.default is None else _value(p.default)


def _placeholder(p: Param) -> str:
    """How a parameter is shown in a synopsis: `UNITS`, `NAMES...`, `bias=BOOL`, `padding=valid|same`."""
    if p.positional:
        return p.name.upper() + ("..." if p.variadic else "")
    value = "|".join(p.choices) if p.kind == "choice" else PLACEHOLDERS.get(p.kind, p.kind.upper())
    return f"{p.name}={value}"


def _synopsis(keyword: str, entry: Entry, block: bool = False) -> str:
    words = [keyword]
    for p in entry.params:
        words.append(_placeholder(p) if p.required else f"[{_placeholder(p)}]")
    if block:
        words.append("{ ... }")
    return " ".join(words)


def _params(params: tuple[Param, ...]) -> list[str]:
    """A parameter table: positionals in order, then options (written `name=`)."""
    if not params:
        return ["No parameters."]
    rows = []
    for p in params:
        name = f"`{p.name}` (positional{', one or more' if p.variadic else ''})" if p.positional else f"`{p.name}=`"
        meaning = p.doc + ("; sweeps of it: shared program" if p.shape_free else "")
        rows.append((name, _kind(p), _default(p), p.range.describe() if p.range else "", meaning))
    return _table(("parameter", "kind", "default", "range", "meaning"), rows)


def _entry_section(table: str, entry: Entry, synopsis: str, notes: list[str] | None = None) -> list[str]:
    """An entry with parameters under its own heading, `### `dense` layer`."""
    out = ["", f"### `{entry.name}` {table}", "", entry.doc[0].upper() + entry.doc[1:] + ".", "", "```", synopsis, "```", ""]
    out += _params(entry.params)
    if notes:
        out += [""] + notes
    if entry.example:
        out += ["", f"Example: {_example(entry)}"]
    return out


def _statements() -> list[str]:
    out = ["", "## Statements", "", STATEMENTS_INTRO.rstrip()]
    for setting in reg.SETTINGS:
        synopsis = _synopsis(setting.name, setting)
        notes = []
        if setting.selects:
            section = SECTIONS[setting.selects]
            synopsis += " [OPTIONS]"
            notes.append(f"OPTIONS are those of the chosen entry of {_link(section)}.")
        out += _entry_section("statement", setting, synopsis, notes)
    return out


# How token padding is masked (dlc/compiler/masking.py), said at the layer that starts the mask.
PADDING_MASK = (
    "Takes integer token ids, one per step, as the model's first layer: a CSV's `text=` column, or an "
    "NPZ's `x` of integers (one of floats is refused, E407), never normalized (`normalize=` is refused, "
    "E607). Id 0 pads a sequence at its end: "
    "the padding mask is true at each step up to the sequence's last token that is not 0 (and at the "
    "first step always). It travels through the layers that keep each step in place (`dropout`, "
    "`activation`, `layernorm`, a `padding=same` stride-1 `conv1d` or 1-d pool, a recurrent "
    "layer with `return_sequences=true`), with the padding steps of their outputs set to zeros; any other "
    "layer drops it (a `padding=valid` convolution, a pool that moves the steps, a recurrent layer giving "
    "its last output, `flatten`, `batchnorm`, whose batch statistics would count the padding). A recurrent layer that gets it reads each sequence to its last token "
    "(Flax's `seq_lengths`; the last output is the one at the last token, the backward direction starts "
    "there), and the global pools take only those steps: the same text with more padding gives the same "
    "outputs. Layers after the mask is dropped see the padding as any other steps."
)


def _layers() -> list[str]:
    out = ["", "## Layers", "", LAYERS_INTRO.rstrip(), "", "Every layer also takes:", ""]
    out += _params(reg.LAYER_COMMON)
    out += ["", "Default names count every layer of a kind in the expanded model, in source order, blocks "
            "included (`repeat_1`); inside nested `repeat` blocks, the outer copy's number comes first "
            "(`name=b` makes `b_1_1`, `b_1_2`, ...). Two layers with one name are an error (E310)."]
    for layer in reg.LAYERS:
        notes = []
        if layer.block:
            notes.append("Holds a block of layers in `{ ... }`, separated like statements; blocks may nest.")
        if layer.train_only:
            notes.append("Acts only while training; evaluation and prediction pass the input through.")
        if layer.stateful:
            notes.append("Keeps state that is not trained (running statistics), updated while training.")
        if layer.takes_tokens:
            notes.append(PADDING_MASK)
        elif layer.masked:
            notes.append("Takes the padding mask of token ids when it reaches it (see `embedding`): "
                         "then it works on each sequence's steps up to its last token only.")
        out += _entry_section("layer", layer, _synopsis(layer.name, layer, layer.block), notes)
    return out


def _aliases(entry: Entry) -> str:
    return ", ".join(f"`{a}`" for a in entry.aliases)


def _example(entry: Entry) -> str:
    return f"`{entry.example}`" if entry.example else ""


def _activations() -> list[str]:
    rows = [(f"`{a.name}`", _aliases(a), a.doc) for a in reg.ACTIVATIONS]
    return ["", "## Activations", "", "Used by `activation` and as the optional activation of `dense` and "
            "`conv2d`.", ""] + _table(("name", "aliases", "meaning"), rows)


def _initializers() -> list[str]:
    rows = [(f"`{i.name}`", i.doc) for i in reg.INITIALIZERS]
    return ["", "## Initializers", "", "Kernel initializers, chosen with `init=` on `dense` and `conv2d`.", ""] \
        + _table(("name", "meaning"), rows)


def _losses() -> list[str]:
    rows = []
    for loss in reg.LOSSES:
        fused = f"`{loss.probability}`" if loss.probability else ""
        options = ", ".join(f"`{p.name}=`" for p in loss.params)
        rows.append((f"`{loss.name}`", TASKS[loss.task], _aliases(loss), options, fused, loss.doc,
                     _example(loss)))
    out = ["", "## Losses", "", "Chosen with `loss NAME [OPTIONS]`.", ""]
    out += _table(("name", "targets", "aliases", "options", "fused output", "meaning", "example"), rows)
    out += ["", "A last layer with a loss's fused output activation is compiled together with the loss into "
            "the numerically stable from-logits form; predictions still apply the activation."]
    for loss in reg.LOSSES:
        if loss.params:
            out += _entry_section("loss", loss, _synopsis(f"loss {loss.name}", loss))
    return out


def _metrics() -> list[str]:
    needs = {(False, False): "no", (True, False): "yes", (True, True): "a binary one (one sigmoid unit)"}
    rows = [(f"`{m.name}`", _aliases(m), needs[m.needs_classification, m.needs_binary],
             "higher" if m.higher_is_better else "lower", m.doc, _example(m)) for m in reg.METRICS]
    return ["", "## Metrics", "", "Listed with `metrics NAME...`; each is reported for every split, and "
            "`early_stop` may monitor it (with or without `val_`). All are exact over the whole split, never "
            "averages of batches: `precision`, `recall` and `f1` from the split's confusion matrix (counted on the "
            "device batch by batch), `auc` from the ranks of all the split's scores.", ""] \
        + _table(("name", "aliases", "needs a classification loss", "better", "meaning", "example"), rows)


def _optimizers() -> list[str]:
    out = ["", "## Optimizers", "", "Chosen with `optimizer NAME [OPTIONS]`. Each is the "
           "[optax](https://optax.readthedocs.io) optimizer of the same name, its options named as in optax "
           "except `lr=` for the learning rate. "
           "Every optimizer also takes:", ""]
    out += _params(reg.OPTIMIZER_COMMON)
    for optimizer in reg.OPTIMIZERS:
        out += _entry_section("optimizer", optimizer,
                              _synopsis(f"optimizer {optimizer.name}", optimizer))
    return out


def _schedules() -> list[str]:
    out = ["", "## Schedules", "", "Chosen with `schedule NAME [OPTIONS]`; the schedule varies the "
           "optimizer's `lr=` over training. Steps count mini-batch updates."]
    for schedule in reg.SCHEDULES:
        out += _entry_section("schedule", schedule,
                              _synopsis(f"schedule {schedule.name}", schedule))
    return out


def _datasets() -> list[str]:
    rows = [(f"`{d.name}`", reg.show_shape(d.features), str(d.classes), str(d.examples), d.doc, _example(d))
            for d in reg.DATASETS]
    return ["", "## Built-in datasets", "", DATA_INTRO.rstrip(), ""] \
        + _table(("name", "features", "classes", "examples", "meaning", "example"), rows)


def _contents() -> list[str]:
    titles = ["Reading a spec", "Rules between statements", "Kinds of value",
              *(SECTIONS[t] for t in ("statement", "layer", "activation", "initializer", "loss", "metric",
                                      "optimizer", "schedule", "dataset"))]
    return ["Contents: " + " · ".join(_link(t) for t in titles) + "."]


def markdown() -> str:
    """The whole of docs/language.md."""
    out = ["# The `.dl` language reference", "",
           f"Generated from `dlc/compiler/registry/` by `{COMMAND}`; do not edit by hand.", ""]
    out += _contents() + [""] + INTRO.rstrip().splitlines() + [""]
    out += _table(("kind", "what to write"), [(f"{kind}", text) for kind, text in reg.KINDS.items()])
    for part in (_statements, _layers, _activations, _initializers, _losses, _metrics, _optimizers, _schedules,
                 _datasets):
        out += part()
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.reconfigure(encoding="utf-8", newline="\n")
    sys.stdout.write(markdown())
