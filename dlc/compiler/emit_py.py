"""`dlc compile --emit py`: the checked program written out as one standalone Python file that
imports no dlc. The model is a `flax.linen.Module` written layer by layer under the spec's layer
names, each line the `code` of its registry entry, and the rest (data, split, normalization, the
Optax chain, the epoch program, early stopping) is the runtime's procedure spelled out, so that
with the same seed the file trains to `dlc run`'s numbers. Pure text: nothing here imports JAX.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from dlc.compiler import emit_encoding, emit_measures, ir, masking
from dlc.compiler import registry as reg
from dlc.compiler.emit_parts import PARTS, TEMPLATE_NAMES
from dlc.version import __version__

# What a layer's `code` gets: the code of the names its arguments refer to.
SOURCE = SimpleNamespace(initializer=lambda name: reg.lookup("initializer", name).code)


def emit_py(program: ir.Program, out: Path | None = None) -> str:
    """The program as a Python file; `out` is where it will be written (data paths are made
    relative to its folder), None for standard output (paths relative to the working folder)."""
    # One blank line after the imports, two before each section, as ruff's isort and format want.
    head = _header(program, out).strip("\n") + "\n\n" + _settings(program, out).strip("\n")
    parts = [head, _data(program), _model(program), _objective(program), emit_measures.measures(program),
             PARTS["engine"], _per_step(program), PARTS["main"]]
    text = emit_measures.with_confusion("\n\n\n".join(part.strip("\n") for part in parts if part) + "\n", program)
    for name, value in _names(program).items():
        text = text.replace(f"@{name}@", value)
    return text


def _names(program: ir.Program) -> dict[str, str]:
    """The values the fixed parts of the file are written with (`@NAME@` in `emit_parts`)."""
    names = {"MODEL": _class_name(program.name), "NAME": program.name, "STREAMS": _literal(reg.RNG_STREAMS),
             "WEIGHT_INDEX": emit_measures.weight_index(program)}
    assert set(names) == set(TEMPLATE_NAMES)
    return names


def _literal(value: object) -> str:
    """Python source for a value of the spec, strings in double quotes (as `ruff format` writes them)."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a Python string literal
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _class_name(name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    return camel if camel.isidentifier() else f"Model{camel}"


def _imports(program: ir.Program) -> str:
    """The standard library modules the data parts use, as isort orders them."""
    d = program.data
    table = emit_encoding.encodes_cells(d)
    names = ["argparse", "collections" if table else "", "csv", "dataclasses",
             "itertools" if d.source == "csv" and not table else "", "math", "re" if table and d.text else "", "time"]
    return "\n".join(f"import {name}" for name in names if name)


def _header(program: ir.Program, out: Path | None) -> str:
    run = f"python {out.name if out else program.name + '.py'} [--out DIR] [--epochs N] [--seed N]"
    return f'''#!/usr/bin/env python3
"""{program.name}: the model and training of `{program.path}`, written out by `dlc compile --emit py`
(dlc {__version__}). It needs jax, flax, optax and numpy{", and scikit-learn for the data" if _builtin(program) else ""}; not dlc.
With the same seed on the same machine it trains to the numbers of `dlc run`.

    {run}

trains it, prints a line per epoch and writes DIR/history.csv (the columns of `dlc run`'s).
"""

from __future__ import annotations

{_imports(program)}
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax'''


def _builtin(program: ir.Program) -> bool:
    return program.data is not None and program.data.source == "builtin"


def _data_file(program: ir.Program, out: Path | None) -> str:
    """The code of the data file's path: relative to the emitted file's folder where one is written."""
    path = Path(program.data.path or program.data.name).resolve()
    if out is None:
        return f"Path({_literal(str(path))})"
    try:
        relative = os.path.relpath(path, out.resolve().parent)
    except ValueError:  # another drive
        return f"Path({_literal(str(path))})"
    return f"Path(__file__).resolve().parent / {_literal(relative)}"


_INPUTS = {False: "the model takes numbers", True: "the model takes integer token ids"}


def _settings(program: ir.Program, out: Path | None) -> str:
    d = program.data
    stop = program.early_stop
    lines = ["# The spec's settings, as checked.",
             f"SEED = {program.seed}", f"EPOCHS = {program.epochs}", f"BATCH = {program.batch}",
             f"INPUT_SHAPE = {tuple(program.input_shape)!r}",
             f"INPUT_DTYPE = jnp.{'int32' if program.token_vocab else 'float32'}  # {_INPUTS[bool(program.token_vocab)]}",
             f"VAL, TEST = {d.val!r}, {d.test!r}", f"NORMALIZE = {_literal(d.normalize)}", f"SHUFFLE = {d.shuffle!r}",
             f"LR = {program.optimizer.args['lr']!r}"]
    if stop is None:
        lines.append("EARLY_STOP = None")
    else:
        rule = {"patience": stop.patience, "monitor": stop.monitor, "min_delta": stop.min_delta, "mode": stop.mode,
                "restore_best": stop.restore_best}
        lines.append(f"EARLY_STOP = {_literal(rule)}")
    if d.source == "csv":
        lines += [f"DATA_FILE = {_data_file(program, out)}", f"TARGET = {_literal(d.target)}"]
        lines += emit_encoding.settings(d) if emit_encoding.encodes_cells(d) else []
    elif d.source == "npz":
        lines.append(f"DATA_FILE = {_data_file(program, out)}")
    lines += ["# Evaluation runs in chunks of this many rows, the last padded: one program for every split.",
              "EVAL_CHUNK = 1024"]
    return "\n".join(lines)


def _data(program: ir.Program) -> str:
    d = program.data
    table = emit_encoding.encodes_cells(d)  # a CSV's cells, encoded as `runtime.tabular` does
    if d.source == "builtin":
        loader = reg.lookup("dataset", d.name).loader
        load = [PARTS["load_builtin"].replace("@LOADER@", loader)]
    else:
        load = emit_encoding.parts(d) if table else [PARTS["load_" + d.source]]
    task = program.task
    width_one = (program.output_shape or (1,))[-1] == 1
    encode = PARTS["encode_" + ("binary_labels" if task == "binary" and width_one else
                                     "multilabel" if task == "binary" else task)]
    stratify = task == "categorical" or (task == "binary" and width_one)
    parts = [*load, PARTS["class_labels"] if task != "regression" and (task == "categorical" or width_one) else "",
             encode]
    held_out = d.val > 0 or d.test > 0
    if held_out:
        parts.append(PARTS["split_stratified" if stratify and d.shuffle else "split"])
    tokens = program.token_vocab is not None
    parts.append(PARTS["normalize_tokens" if tokens else "normalize_" + d.normalize])
    n = "len(y)" if table else "len(x)"
    strata = f'encoded["all"].reshape({n}, -1)[:, 0].astype(np.int64)' if stratify else "None"
    if table:
        split = f"parts = split_indices({n}, VAL, TEST, seed, strata={strata})" if held_out \
            else f'parts = {{"train": np.arange({n})}}'
        parts.append(emit_encoding.prepare(split))
    else:
        split = ('val, test = (0.0 if "val" in given else VAL), (0.0 if "test" in given else TEST)\n'
                 f"    parts = split_indices({n}, val, test, seed, strata={strata})") if held_out \
            else f'parts = {{"train": np.arange({n})}}'
        parts += [PARTS["examples_tokens" if tokens else "examples"], PARTS["prepare"].replace("@SPLIT@", split)]
    return "\n\n\n".join(part.strip("\n") for part in parts if part)


# --- the model --------------------------------------------------------------------------------


def _last_active(layers: tuple[ir.Layer, ...]) -> int | None:
    """Index of the layer whose activation is the output's, as the lowering finds it."""
    for i in range(len(layers) - 1, -1, -1):
        if not reg.layer(layers[i].kind).passes_activation:
            return i
    return None


def _layer_lines(layers: tuple[ir.Layer, ...], strip: bool, depth: list[int], mask: masking.MaskPlan) -> list[str]:
    """The body of `__call__` for `layers`, as `lower._apply` runs them; `strip` marks the output
    activation, which a fused loss leaves out (`logits=True`); `mask` where the padding mask goes."""
    lines: list[str] = []
    last = _last_active(layers) if strip else None
    for i, layer in enumerate(layers):
        entry = reg.layer(layer.kind)
        if entry.skip:
            depth[0] += 1
            skip = f"skip_{depth[0]}"
            lines += [f"{skip} = x  # {layer.name}: the block's output is added to its input",
                      *_layer_lines(layer.body, False, depth, mask), f"x = {skip} + x"]
        elif entry.block:
            lines += [f"# {layer.name}", *_layer_lines(layer.body, i == last, depth, mask)]
        else:
            if layer.name == mask.start:
                lines.append("mask = padding_mask(x)  # the steps up to each sequence's last token")
            code = entry.code(masking.build_args(layer, mask), SOURCE)
            lines += [f"x = {expression}" for expression in ((code,) if isinstance(code, str) else code)
                      if expression != "x"]
            if entry.activates:
                code = reg.lookup("activation", layer.args["activation"]).code
                if code != "{x}" and i == last:
                    lines += ["if not logits:  # the loss takes logits: this activation is fused into it",
                              f"    x = {code.format(x='x')}"]
                elif code != "{x}":
                    lines.append(f"x = {code.format(x='x')}")
            if layer.name in mask.zeroed:
                lines.append("x = jnp.where(mask[..., None], x, 0)  # padding steps stay zeros")
    return lines


LINE_LENGTH = 120  # the project's (pyproject.toml), so that `ruff format` leaves the file as it is


def _formatted(line: str) -> str:
    """A generated statement as `ruff format` writes it: one line when it fits; else split at the
    last bracket pair whose opening line fits (right to left, as ruff does), with the contents on
    one line of their own when they fit, else one per line with a trailing comma."""
    if len(line) <= LINE_LENGTH:
        return line
    indent = line[:len(line) - len(line.lstrip())]
    for start, end, items in reversed(_bracket_pairs(line)):
        head, tail = line[:start + 1], line[end:]
        if len(head) > LINE_LENGTH or not items:
            continue
        hugged = f"{indent}    {', '.join(items)}"
        if len(hugged) <= LINE_LENGTH:
            return f"{head}\n{hugged}\n{indent}{tail}"
        return "\n".join([head, *(f"{indent}    {item}," for item in items), f"{indent}{tail}"])
    return line


def _bracket_pairs(line: str) -> list[tuple[int, int, list[str]]]:
    """The outermost bracket pairs of a line: where each opens and closes, and its top-level items."""
    pairs, depth, quote, start, begin, items = [], 0, None, 0, 0, []
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote and line[i - 1] != "\\" else quote
        elif c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
            if depth == 1:
                start, begin, items = i, i + 1, []
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                items.append(line[begin:i].strip())
                pairs.append((start, i, [item for item in items if item]))
        elif c == "," and depth == 1:
            items.append(line[begin:i].strip())
            begin = i + 1
    return pairs


def _stateful(layers: tuple[ir.Layer, ...]) -> bool:
    return any(reg.layer(layer.kind).stateful or _stateful(layer.body) for layer in layers)


def _model(program: ir.Program) -> str:
    loss = reg.lookup("loss", program.loss.name)
    fused = program.from_logits and program.output_activation == loss.probability
    mask = masking.plan(program.layers)
    body = "\n".join(_formatted(f"        {line}") for line in _layer_lines(program.layers, fused, [0], mask))
    helper = reg.MASK_CODE.strip("\n") + "\n\n\n" if mask.start else ""
    if _stateful(program.layers):
        helper += '''def real_rows(rows, x):
    """The batch statistics' mask: the real examples of a padded batch (None outside training)."""
    return None if rows is None else rows.reshape((-1,) + (1,) * (x.ndim - 1)) > 0


'''
    return f'''# --- the model ------------------------------------------------------------------------------


{helper}class @MODEL@(nn.Module):
    """The layers of the spec, under its layer names. `logits=True` leaves out an output
    activation that the loss fuses; `rows` marks the real examples of a padded batch (1) and
    the padding (0)."""

    @nn.compact
    def __call__(self, x, train: bool = False, logits: bool = False, rows=None):
{body}
        return x


MODEL = @MODEL@()'''


def _objective(program: ir.Program) -> str:
    loss = reg.lookup("loss", program.loss.name)
    probability = reg.lookup("activation", loss.probability if program.from_logits else "linear").code
    metrics = "".join(_formatted(f"    {_literal(name)}: lambda pred, y: {reg.lookup('metric', name).code(loss.task)},")
                      + "\n" for name in program.metrics if reg.lookup("metric", name).per_example is not None)
    metrics = "{\n" + metrics + "}" if metrics else "{}"
    opt, schedule = program.optimizer, program.schedule
    chain = []
    if opt.args.get("clip") is not None:
        chain.append(f"optax.clip_by_global_norm({opt.args['clip']!r})")
    chain.append(reg.lookup("optimizer", opt.name).code(opt.args))
    chain.append("optax.inject_hyperparams(optax.scale)(step_size=LR)")
    steps = "".join(_formatted(f"        {part},") + "\n" for part in chain)
    frozen = sorted(leaf.name for leaf in ir.leaves(program.layers) if leaf.frozen)
    return f'''# --- loss, metrics, optimizer ---------------------------------------------------------------


def per_example_loss(out, y):
    """The `{loss.name}` loss of each example{", from logits" if program.from_logits else ""}."""
{_formatted(f"    return {loss.code(program.loss.args)}")}


def predictions(out):
    """What the metrics compare with the labels: the model's outputs as `predict` gives them."""
    return {probability.format(x="out")}


METRICS = {metrics}
{emit_measures.settings(program, _literal)}


def unit_schedule(steps_per_epoch: int, total_steps: int):
    """The `{schedule.name}` schedule of rate 1: the learning rate's factor at each update."""
{_formatted(f"    return {reg.lookup('schedule', schedule.name).code(schedule.args)}")}


def make_optimizer(steps_per_epoch: int, total_steps: int):
    """The Optax chain: the update rule driven by the schedule of rate 1, then the learning rate
    as an injected hyperparameter (scaling after the rule equals the rule with its rate built in)."""
    schedule = unit_schedule(steps_per_epoch, total_steps)
    chain = optax.chain(
{steps}    ){_frozen(frozen)}'''


def _frozen(names: list[str]) -> str:
    """The end of `make_optimizer`: the chain, or with frozen layers the chain for the trainable
    parameters only and zero updates for the frozen ones, as `lower.optimizer` builds it."""
    if not names:
        return "\n    return chain"
    return f'''
    # Frozen layers (`trainable=false`): zero updates and no optimizer state; clipping and weight
    # decay see the trainable parameters only.
    frozen = {_literal(tuple(names))}
    return optax.multi_transform(
        {{"trainable": chain, "frozen": optax.set_to_zero()}},
        lambda params: {{
            name: jax.tree.map(lambda _, label="frozen" if name in frozen else "trainable": label, tree)
            for name, tree in params.items()
        }},
    )'''


def _has_per_step(layers: tuple[ir.Layer, ...]) -> bool:
    return any(reg.layer(layer.kind).per_step_on_cpu or _has_per_step(layer.body) for layer in layers)


def _per_step(program: ir.Program) -> str:
    """On a CPU, models whose layers train faster one compiled step per mini-batch (convolutions)
    train that way, as `dlc run` does."""
    return PARTS["per_step"] if _has_per_step(program.layers) else PARTS["scan_only"]
