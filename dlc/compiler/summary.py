"""The `dlc compile` summary: a table of layers, shapes and parameter counts in the spirit of
Keras's `model.summary()`, then every training setting with its defaults filled in."""

from __future__ import annotations

from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.registry import show_shape


def _describe(layer: ir.Layer) -> str:
    """A layer as its canonical one-line form, without defaults."""
    entry = reg.layer(layer.kind)
    words = [layer.kind]
    for p in entry.params:
        value = layer.args.get(p.name)
        if value is None or (not p.required and value == p.default):
            continue
        text = show_shape(value) if isinstance(value, tuple) else _value(value)
        words.append(text if p.positional else f"{p.name}={text}")
    return " ".join(words)


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _rows(layers: tuple[ir.Layer, ...], depth: int = 0) -> list[tuple[str, str, str, str, str]]:
    """A row per layer: its form, name, output shape, parameters (trainable and frozen) and where they
    start (`_start`)."""
    rows = []
    for layer in layers:
        params = "?" if layer.params is None else f"{layer.params + (layer.frozen_params or 0):,}"
        copies = reg.layer(layer.kind).copies
        label = "  " * depth + (f"{layer.kind} ×{layer.args[copies]}" if copies else _describe(layer))
        rows.append((label, layer.name, show_shape(layer.output_shape), params, _start(layer)))
        rows.extend(_rows(layer.body, depth + 1))
    return rows


def _start(layer: ir.Layer) -> str:
    """Where a layer's parameters start and whether training changes them: `from run` (the `init`
    run's) or `fresh`, then `frozen` for `trainable=false`. Empty for a layer without parameters of
    its own (its block's rows say it for each layer)."""
    if not reg.layer(layer.kind).learns:
        return ""
    return ("from run" if layer.init == "run" else "fresh") + (", frozen" if layer.frozen else "")


def _options(named: ir.Named) -> str:
    return " ".join([named.name] + [f"{k}={_value(v)}" for k, v in named.args.items() if v is not None])


def summary(program: ir.Program) -> str:
    rows = [("input", "", show_shape(program.input_shape), "0", "")] + _rows(program.layers)
    head = ("Layer", "Name", "Output shape", "Params", "Start")
    # The column of where parameters start, for a model that starts from a run or freezes layers.
    columns = 5 if program.init is not None or program.frozen_params else 4
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(columns)]
    line = "─" * (sum(widths) + 3 * (columns - 1))
    fmt = f"{{:<{widths[0]}}}   {{:<{widths[1]}}}   {{:<{widths[2]}}}   {{:>{widths[3]}}}" + \
        (f"   {{:<{widths[4]}}}" if columns == 5 else "")
    out = [f'Model "{program.name}" ({program.path})', line, fmt.format(*head).rstrip(), line]
    out += [fmt.format(*r).rstrip() for r in rows]
    out.append(line)
    if program.params is None:
        out.append("Trainable params: unknown until the input shape is known")
    else:
        out.append(f"Trainable params: {program.params:,} ({program.params * 4 / 1024:,.1f} KiB as float32)")
        if program.frozen_params:
            out.append(f"Frozen params: {program.frozen_params:,} (`trainable=false`: training leaves them as "
                       "they are)")
    out.append(line)
    out += [f"{k:<10} {v}" for k, v in _settings(program)]
    return "\n".join(out) + "\n"


def _settings(p: ir.Program) -> list[tuple[str, str]]:
    rows = []
    d = p.data
    if d is None:
        rows.append(("data", "none: arrays come through the Python API"))
    else:
        facts = []
        if d.source == "builtin":
            entry = reg.lookup("dataset", d.name)
            facts.append(f"{entry.examples:,} examples, {d.classes} classes")
        splits = f"val={d.val:g} test={d.test:g} normalize={d.normalize} shuffle={_value(d.shuffle)}"
        target = f' target="{d.target}"' if d.target else ""
        rows.append(("data", f"{d.name}{target} {splits}" + (f" ({', '.join(facts)})" if facts else "")))
        rows += [("", line) for line in _encoding(d)]
    if p.loss:
        fused = f" (fused with the {p.output_activation} output: from logits)" if \
            p.from_logits and p.output_activation != "linear" else ""
        rows.append(("loss", _options(p.loss) + fused))
    else:
        rows.append(("loss", "none: `dlc run` needs one"))
    rows.append(("optimizer", _options(p.optimizer) if p.optimizer else "none: `dlc run` needs one"))
    rows.append(("schedule", _options(p.schedule)))
    rows.append(("batch", str(p.batch)))
    rows.append(("epochs", str(p.epochs)))
    if p.early_stop:
        e = p.early_stop
        rows.append(("early_stop", f"patience={e.patience} monitor={e.monitor} ({e.mode}) min_delta={e.min_delta:g} "
                                   f"restore_best={_value(e.restore_best)}"))
    else:
        rows.append(("early_stop", "off"))
    rows.append(("metrics", " ".join(p.metrics) or "none"))
    rows.append(("seed", str(p.seed)))
    if p.init is not None:
        learned = [leaf for leaf in ir.leaves(p.layers) if reg.layer(leaf.kind).learns]
        copied = sum(leaf.init == "run" for leaf in learned)
        rows.append(("init", f"{p.init.path} ({copied} of {len(learned)} layers with parameters from the run"
                             f"{'; strict' if p.init.strict else ''})"))
    if p.sweep is not None:
        rows.append(("sweep", _sweep(p.sweep)))
    return rows


def _encoding(d: ir.Data) -> list[str]:
    """How a CSV's cells become the model's input: missing cells, a text column's tokens, and a line
    per categorical column with its one-hot width."""
    lines = [f"missing cells: {d.missing}"] if d.source == "csv" and d.missing != "error" else []
    if d.text is not None:
        lines.append(f'text="{d.text}": {d.tokenize} tokens, vocab={d.vocab} (0 padding, 1 unknown), '
                     f"length={d.features[0]}")
    lines += [f"{column}: one-hot, {width} categor{'y' if width == 1 else 'ies'}" for column, width in d.categorical]
    return lines


def _sweep(sweep: ir.Sweep) -> str:
    """The axes, the members and the programs they train as: the table above is the first member's."""
    axes = " × ".join(f"{axis.name} [{', '.join(_shown(v) for v in axis.values)}]" for axis in sweep.axes)
    members, programs = len(sweep.members), len(sweep.groups)
    return (f"{axes}: {members} member{'s' * (members != 1)} in {programs} program{'s' * (programs != 1)} "
            f"(shown: the first, {sweep.labels[0]})")


def _shown(value: object) -> str:
    return show_shape(value) if isinstance(value, tuple) else _value(value)
