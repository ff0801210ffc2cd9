"""Data facts and input, and the rules that relate the output to the loss and the data, the metrics
to the loss, and `early_stop` to the validation data; then the IR. Stages of the checker (`check.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlc.compiler import ir
from dlc.compiler import registry as reg
from dlc.compiler.binding import _UNKNOWN, _Bound
from dlc.compiler.datafacts import NOT_FOUND, DataFactError, FileFacts, csv_facts, data_file_problem, npz_facts
from dlc.compiler.diagnostics import Label, error, warning
from dlc.compiler.registry import show_shape
from dlc.compiler.suggest import closest
from dlc.grammar import nodes as n


class DataStage:
    """What the data tells, and the input shape it gives."""

    def setting(self, name: str) -> _Bound | None:
        """A setting that is present and fully valid, else None."""
        bound = self.settings.get(name)
        return bound if bound is not None and bound.ok else None

    def check_data(self) -> ir.Data | None:
        bound = self.settings.get("data")
        if self.arrays is not None:
            return self.arrays
        if bound is None:
            return None
        a, node = bound.args, bound.statement
        source = a.get("source")
        if source is _UNKNOWN or source is None:
            return None
        val, test = a.get("val"), a.get("test")
        if isinstance(val, float) and isinstance(test, float) and val + test >= 1:
            where = node.option("test") or node.option("val")
            self.report(error("E605", where.span, f"`val={val:g}` and `test={test:g}` leave no training data",
                              "hold out less: the two fractions must add up to less than 1"))
            bound.ok = False
        value = node.positionals[0]
        if isinstance(value, n.Name):
            if node.option("target"):
                self.report(error("E202", node.option("target").name_span,
                                  f"built-in dataset `{source}` has no option `target`",
                                  "`target=` names the label column of a CSV file"))
                return None
            if not bound.ok:
                return None
            entry = reg.lookup("dataset", source)
            assert isinstance(entry, reg.Dataset)
            return ir.Data("builtin", entry.name, None, val, test, a["normalize"], a["shuffle"], None,
                           entry.features, "classification", entry.classes, None, val > 0, test > 0,
                           entry.examples)
        written = Path(source)
        path = written if written.is_absolute() else self.base_dir / written
        suffix = path.suffix.lower()
        try:
            if suffix not in (".csv", ".npz"):
                raise DataFactError("E601", f"unsupported data file `{source}`",
                                    "use a `.csv` file with a header row or a `.npz` file with arrays `x` and `y`")
            problem = data_file_problem(path)
            if problem == NOT_FOUND:
                raise DataFactError("E600", f"data file `{source}` not found", f"looked for `{path}`" + (
                    "" if written.is_absolute() else "; a relative path starts at the spec's folder"))
            if problem:
                raise DataFactError("E606", f"data file `{source}` {problem}", "name a `.csv` or `.npz` file")
            if a.get("target") is _UNKNOWN:
                return None  # a `target=` of the wrong type, already reported
            if suffix == ".csv":
                facts = csv_facts(path, a.get("target"))
            else:
                if node.option("target"):
                    raise DataFactError("E202", "an NPZ source has no option `target`",
                                        "labels are the array `y`", at="target")
                facts = npz_facts(path)
        except DataFactError as e:
            where = node.option("target") if e.at == "target" and node.option("target") else None
            span = (where.value.span if e.code != "E202" else where.name_span) if where else \
                (value.span if e.code != "E603" else node.span)
            self.report(error(e.code, span, e.message, e.hint))
            return None
        if not bound.ok:
            return None
        return self.file_data(suffix[1:], source, path, a, facts)

    @staticmethod
    def file_data(kind: str, source: str, path: Path, a: dict, facts: FileFacts) -> ir.Data:
        if facts.integer_labels:
            task = "classification"
        elif facts.integer_labels is None:
            task = "unknown"
        else:
            task = "regression" if facts.target_width == 1 else "multilabel"
        return ir.Data(kind, source, str(path), a["val"], a["test"], a["normalize"], a["shuffle"], a.get("target"),
                       facts.features, task, None, facts.target_width,
                       a["val"] > 0 or facts.has_val, a["test"] > 0 or facts.has_test)

    def check_input(self, data: ir.Data | None) -> tuple[int, ...] | None:
        bound = self.settings.get("input")
        if bound is None:
            broken_input = self.mentioned("input")
            if data is None or broken_input:
                return None
            return data.features
        if not bound.ok:
            return None
        shape = bound.args["shape"]
        if data is not None and data.features is not None:
            have, want = _prod(data.features), _prod(shape)
            if have != want:
                self.report(error("E404", bound.statement.span,
                                  f"`input {show_shape(shape)}` has {want} values per example, "
                                  f"but `{'x' if data.source == 'arrays' else data.name}` has {have}"
                                  + (f" ({show_shape(data.features)})" if len(data.features) > 1 else ""),
                                  f"use a shape with {have} values, like `input {have}`"))
                return None
        return shape


class TrainingStage:
    """Output against loss and data, metrics, early stopping, missing settings, and the IR."""

    def last_layer_span(self) -> n.Span | None:
        for node in reversed(self.layers):
            if isinstance(node, n.Statement):
                return node.keyword_span if node.block is not None else node.span
            return None
        loss = self.settings.get("loss")
        return loss.statement.span if loss else None

    @staticmethod
    def output_activation(layers: list[ir.Layer]) -> str:
        for layer in reversed(layers):
            entry = reg.layer(layer.kind)
            if entry.passes_activation:
                continue
            if entry.activates:
                return layer.args["activation"]
            if entry.block and not entry.skip:
                return TrainingStage.output_activation(list(layer.body))
            return "linear"
        return "linear"

    def check_training(self, data: ir.Data | None, input_shape: Any, layers: list[ir.Layer],
                       output: tuple[int, ...] | None) -> ir.Program | None:
        loss = self.setting("loss")
        loss_entry = reg.lookup("loss", loss.args["name"]) if loss else None
        activation = self.output_activation(layers)
        if loss_entry is not None and output is not None:
            self.check_output(loss_entry, output, data, activation)
        self.check_metrics(loss_entry)
        early = self.check_early_stop(data)
        self.warn_missing(input_shape, data)
        if any(d.is_error for d in self.diagnostics):
            return None
        s = {k: (v.args if v else {}) for k, v in self.settings.items()}
        optimizer = self.settings.get("optimizer")
        schedule = self.settings.get("schedule")
        params = sum(layer.params for layer in layers) if all(layer.params is not None for layer in layers) \
            and input_shape is not None else None
        return ir.Program(
            name=s.get("model", {}).get("name") or (Path(self.spec.path).stem if not self.spec.path.startswith("<")
                                                    else "") or "model",
            path=self.spec.path,
            data=data,
            input_shape=input_shape,
            layers=tuple(layers),
            output_shape=output,
            params=params,
            output_activation=activation,
            loss=ir.Named(loss_entry.name, _entry_args(loss.args)) if loss_entry else None,
            from_logits=bool(loss_entry and loss_entry.probability),
            optimizer=ir.Named(optimizer.args["name"], _entry_args(optimizer.args)) if optimizer else None,
            schedule=ir.Named(schedule.args["name"], _entry_args(schedule.args)) if schedule else ir.Named("constant"),
            batch=s.get("batch", {}).get("size", 32),
            epochs=s.get("epochs", {}).get("count", 10),
            early_stop=early,
            metrics=tuple(s.get("metrics", {}).get("names", ())),
            seed=s.get("seed", {}).get("value", 0),
            source=self.spec.source,
        )

    def check_output(self, loss: reg.Loss, output: tuple[int, ...], data: ir.Data | None, activation: str) -> None:
        span = self.last_layer_span()
        if span is None:
            return
        classes = data.classes if data and data.task == "classification" else None
        fix = None
        if loss.task == "categorical":
            if len(output) != 1 or output[0] < 2:
                hint = ("for two classes use `dense 1 sigmoid` with `loss binary_crossentropy`, "
                        "or `dense 2 softmax`") if output == (1,) else "end with `flatten` then `dense CLASSES softmax`"
                self.report(error("E500", span, f"`{loss.name}` needs a flat output with one unit per class, "
                                  f"got {show_shape(output)}", hint))
                return
            if data and data.target_width and data.task == "multilabel":
                fix = ("E503", f"`{loss.name}` needs one class index per example, but `{data.name}` has "
                       f"{data.target_width} targets per example", "use `binary_crossentropy` for several labels")
            elif classes is not None and output[0] != classes:
                fix = ("E501", f"the output has {_units(output)} but `{data.name}` has {classes} classes",
                       f"end with `dense {classes} softmax`")
            elif data and data.task == "regression":
                fix = ("E503", f"`{loss.name}` needs class labels, but the labels of `{data.name}` are not integers",
                       "use a regression loss such as `mse`, or store labels as integers")
        elif loss.task == "binary":
            if len(output) != 1:
                self.report(error("E500", span, f"`{loss.name}` needs a flat output, got {show_shape(output)}",
                                  "end with `flatten` then `dense 1 sigmoid`"))
                return
            if classes is not None and classes != 2:
                fix = ("E503", f"`{loss.name}` is for two classes, but `{data.name}` has {classes}",
                       f"use `loss categorical_crossentropy` with `dense {classes} softmax`")
            elif classes == 2 and output[0] != 1:
                fix = ("E501", f"`{loss.name}` needs one output unit for the two classes of `{data.name}`, "
                       f"got {output[0]}", "end with `dense 1 sigmoid`")
            elif data and data.target_width and data.task != "classification" and output[0] != data.target_width:
                fix = ("E502", f"the output has {_units(output)} but `{data.name}` has {data.target_width} "
                       f"label{'s' * (data.target_width != 1)} per example", f"end with `dense {data.target_width} sigmoid`")
        else:
            if classes is not None:
                fix = ("E503", f"`{loss.name}` is a regression loss, but `{data.name}` has class labels",
                       "use `loss categorical_crossentropy` (or `binary_crossentropy` for two classes)")
            elif data and data.target_width and output != (data.target_width,):
                fix = ("E502", f"the output has {_units(output)} but `{data.name}` has "
                       f"{data.target_width} target value{'s' * (data.target_width != 1)} per example",
                       f"end with `dense {data.target_width}`")
        if fix:
            self.report(error(fix[0], span, fix[1], fix[2]))
        elif loss.probability and activation not in (loss.probability, "linear"):
            self.report(warning("W103", span, f"`{loss.name}` expects a `{loss.probability}` output, "
                                f"not `{activation}`", f"end with `{loss.probability}`, or `linear` for logits; "
                                f"as written, the loss takes the `{activation}` outputs as logits"))

    def check_metrics(self, loss: reg.Loss | None) -> None:
        bound = self.settings.get("metrics")
        if not bound:
            return
        seen: dict[str, n.Value] = {}
        for value, name in zip(bound.statement.positionals, bound.args.get("names", ()), strict=True):
            if name is _UNKNOWN:
                continue
            if name in seen:
                self.report(error("E305", value.span, f"metric `{name}` is listed twice", "list it once",
                                  (Label(seen[name].span, "first listed here"),)))
                bound.ok = False
                continue
            seen[name] = value
            metric = reg.lookup("metric", name)
            if loss is not None and metric.needs_classification and loss.task == "regression":
                self.report(error("E504", value.span, f"`{name}` needs a classification loss, but the loss is "
                                  f"`{loss.name}`", "use `mae` or `mse` to measure a regression"))
                bound.ok = False

    def check_early_stop(self, data: ir.Data | None) -> ir.EarlyStop | None:
        bound = self.settings.get("early_stop")
        if bound is None or not bound.ok:
            return None
        a, node = bound.args, bound.statement
        monitor = a["monitor"]
        metrics = self.settings.get("metrics")
        listed = [m for m in (metrics.args.get("names", ()) if metrics else ()) if m is not _UNKNOWN]
        known = ["loss", "val_loss"] + listed + [f"val_{m}" for m in listed]
        if monitor not in known:
            if reg.lookup("metric", monitor.removeprefix("val_")) and self.mentioned("metrics") \
                    and not (metrics and metrics.ok):
                return None  # the `metrics` statement is broken or misspelled: it was reported there
            where = node.option("monitor")
            self.report(error("E505", where.value.span if where else node.span,
                              f"cannot monitor `{monitor}`: it is not computed", self.monitor_hint(monitor, known)))
            return None
        if monitor.startswith("val_") and data is not None and not data.has_val:
            split = f"`data {data.name} val=0.1`" if data.source == "builtin" else "`val=0.1` on `data`"
            self.report(error("E506", node.span, f"`early_stop` monitors `{monitor}`, but there is no validation data",
                              f"hold some out with {split}, or monitor `loss`"))
            return None
        base = reg.lookup("metric", monitor.removeprefix("val_"))
        mode = "max" if base is not None and base.higher_is_better and monitor.removeprefix("val_") != "loss" else "min"
        return ir.EarlyStop(a["patience"], monitor, a["min_delta"], a["restore_best"], mode)

    @staticmethod
    def monitor_hint(monitor: str, known: list[str]) -> str:
        """The closest quantity that is computed, or could be with one more metric."""
        could = [prefix + m for m in reg.names("metric") for prefix in ("", "val_")]
        guess = closest(monitor, known + [q for q in could if q not in known])
        if guess is None:
            return f"monitor one of {', '.join(f'`{k}`' for k in known)}"
        if guess in known:
            return f"did you mean `{guess}`?"
        needed = f"`metrics {guess.removeprefix('val_')}`"
        return f"add {needed} to compute it" if guess == monitor else f"did you mean `{guess}`? it needs {needed}"

    def warn_missing(self, input_shape: Any, data: ir.Data | None) -> None:
        if input_shape is None and data is None and not self.mentioned("input") and not self.mentioned("data") \
                and not self.training:
            first = next((x for x in self.layers if isinstance(x, n.Statement)), None)
            if first is not None:
                self.report(warning("W100", first.span, "the input shape is unknown: shapes are checked when arrays "
                                    "arrive", "add `input SHAPE` or `data SOURCE` to check them now"))
        for name, code, refusal in (("loss", "W101", "E507"), ("optimizer", "W102", "E508")):
            if not self.mentioned(name):
                hint = f"add, for example, `{reg.lookup('statement', name).example}`"
                if self.training:
                    self.report(error(refusal, self.file_start, f"no `{name}`: training needs one", hint))
                else:
                    self.report(warning(code, self.file_start, f"no `{name}`: `dlc run` and `fit` need one", hint))



def _entry_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "name"}


def _units(shape: tuple[int, ...]) -> str:
    """An output's size in words: `3 units`, or `shape 6x6x4` when it is not flat."""
    if len(shape) == 1:
        return f"{shape[0]} unit{'s' * (shape[0] != 1)}"
    return f"shape {show_shape(shape)}"


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
