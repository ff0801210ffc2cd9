"""Data facts and input, and the rules that relate the output to the loss and the data, the metrics
to the loss, and `early_stop` to the validation data; then the IR. Stages of the checker (`check.py`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dlc.compiler import ir
from dlc.compiler import messages as m
from dlc.compiler import registry as reg
from dlc.compiler.binding import _UNKNOWN, _Bound
from dlc.compiler.csvfacts import categorical_columns
from dlc.compiler.datafacts import NOT_FOUND, DataFactError, FileFacts, csv_facts, data_file_problem, npz_facts
from dlc.compiler.diagnostics import Label
from dlc.compiler.registry import show_shape
from dlc.compiler.suggest import closest
from dlc.grammar import nodes as n


class DataStage:
    """What the data tells, and the input shape it gives."""

    # The first `x` array of an NPZ source that holds floats, and their dtype (`FileFacts.float_x`): read
    # from the file here, for the rule on the first layer (`shapes.py`); None for data read already.
    float_x: tuple[str, str] | None = None

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
            self.report(m.NOTHING_TO_TRAIN_ON.at(where.span, val=val, test=test))
            bound.ok = False
        value = node.positionals[0]
        if self.csv_options_misplaced(node, source, isinstance(value, n.Name)):
            return None
        if isinstance(value, n.Name):
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
                raise DataFactError(m.UNSUPPORTED_FILE, source=source)
            problem = data_file_problem(path)
            if problem == NOT_FOUND:
                raise DataFactError(m.FILE_NOT_FOUND, source=source, path=path, hint=None if written.is_absolute()
                                    else m.LOOKED_FOR_RELATIVE.format(path=path))
            if problem:
                raise DataFactError(m.NOT_A_DATA_FILE, source=source, problem=problem)
            if a.get("target") is _UNKNOWN or a.get("text") is _UNKNOWN:
                return None  # a `target=` or `text=` of the wrong type, already reported
            if suffix == ".csv":
                facts = csv_facts(path, a.get("target"), a.get("text"))
            else:
                facts = npz_facts(path)
        except DataFactError as e:
            target = node.option("target")
            if e.at == "statement":
                span = node.span
            elif e.at == "source" or target is None:
                span = value.span
            elif e.at == "text":
                span = node.option("text").value.span
            else:
                span = target.value.span
            self.report(e.diagnostic(span))
            return None
        if not bound.ok:
            return None
        self.float_x = facts.float_x
        data = self.file_data(suffix[1:], source, path, a, facts)
        return self.csv_encoding(data, facts) if suffix == ".csv" else data

    def csv_options_misplaced(self, node: n.Statement, source: str, builtin: bool) -> bool:
        """Report the options only a CSV source takes on a built-in dataset or an NPZ file, and the
        text options without `text=`; whether any was reported."""
        csv_only = builtin or Path(source).suffix.lower() == ".npz"
        found = False
        for option in node.options:
            if csv_only and option.name in reg.CSV_OPTIONS:
                if option.name == "target":
                    message = m.TARGET_ON_BUILTIN if builtin else m.TARGET_ON_NPZ
                else:
                    message = m.CSV_OPTION_ON_BUILTIN if builtin else m.CSV_OPTION_ON_NPZ
                self.report(message.at(option.name_span, source=source, option=option.name))
                found = True
            elif not csv_only and option.name in reg.TEXT_OPTIONS and node.option("text") is None:
                self.report(m.TEXT_OPTION_WITHOUT_TEXT.at(option.name_span, option=option.name))
                found = True
        return found

    def csv_encoding(self, data: ir.Data, facts: FileFacts) -> ir.Data:
        """The CSV's features as the model gets them: a text column as `length` token ids; else each
        numeric column one feature and each categorical column as many as its training categories
        (`csvfacts.py`), which leaves them unknown when the seed or the loss (the split) is."""
        bound = self.settings["data"]
        a = bound.args
        if a.get("text") is not None:
            if a["normalize"] != "none":
                self.report(m.TEXT_NORMALIZED.at(bound.statement.option("normalize").value.span,
                                                 normalize=a["normalize"], text=a["text"]))
            return dataclasses.replace(data, features=(a["length"],), tokens=True, vocab=a["vocab"])
        seed, loss = self.settings.get("seed"), self.settings.get("loss")
        if (seed is not None and not seed.ok) or (loss is None and self.mentioned("loss")) \
                or (loss is not None and not loss.ok):
            return dataclasses.replace(data, features=None)
        task = reg.lookup("loss", loss.args["name"]).task if loss else "regression"
        categorical = categorical_columns(Path(data.path), facts.columns, data.target, missing=data.missing,
                                          val=data.val, test=data.test, shuffle=data.shuffle,
                                          seed=seed.args["value"] if seed else 0, stratify=task != "regression")
        if categorical is None:
            return dataclasses.replace(data, features=None)
        width = len(facts.columns) - 1 + sum(k - 1 for _, k in categorical)
        return dataclasses.replace(data, features=(width,), categorical=categorical)

    @staticmethod
    def file_data(kind: str, source: str, path: Path, a: dict, facts: FileFacts) -> ir.Data:
        if facts.integer_labels:
            task = "classification"
        elif facts.integer_labels is None:
            task = "unknown"
        else:
            task = "regression" if facts.target_width == 1 else "multilabel"
        csv = {"missing": a["missing"], "text": a.get("text"), "tokenize": a["tokens"]} if kind == "csv" else {}
        return ir.Data(kind, source, str(path), a["val"], a["test"], a["normalize"], a["shuffle"], a.get("target"),
                       facts.features, task, None, facts.target_width,
                       a["val"] > 0 or facts.has_val, a["test"] > 0 or facts.has_test, **csv)

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
                data_shape = m.DATA_SHAPE.format(shape=show_shape(data.features)) if len(data.features) > 1 else ""
                self.report(m.INPUT_VS_DATA.at(bound.statement.span, shape=show_shape(shape), want=want, have=have,
                                               data="x" if data.source == "arrays" else data.name,
                                               data_shape=data_shape))
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
                       output: tuple[int, ...] | None, run: ir.Init | None) -> ir.Program | None:
        loss = self.setting("loss")
        loss_entry = reg.lookup("loss", loss.args["name"]) if loss else None
        activation = self.output_activation(layers)
        if loss_entry is not None and output is not None:
            self.check_output(loss_entry, output, data, activation)
            self.check_class_weight(loss, loss_entry, output)
        self.check_metrics(loss_entry, output)
        early = self.check_early_stop(data)
        self.warn_missing(input_shape, data)
        if any(d.is_error for d in self.diagnostics):
            return None
        s = {k: (v.args if v else {}) for k, v in self.settings.items()}
        optimizer = self.settings.get("optimizer")
        schedule = self.settings.get("schedule")
        known = all(layer.params is not None for layer in layers) and input_shape is not None
        params = sum(layer.params for layer in layers) if known else None
        frozen = sum(layer.frozen_params for layer in layers) if known else None
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
            frozen_params=frozen,
            init=run,
        )

    def check_output(self, loss: reg.Loss, output: tuple[int, ...], data: ir.Data | None, activation: str) -> None:
        span = self.last_layer_span()
        if span is None:
            return
        classes = data.classes if data and data.task == "classification" else None
        fix = None
        if loss.task == "categorical":
            if len(output) != 1 or output[0] < 2:
                self.report(m.OUTPUT_NOT_CLASSES.at(span, hint=m.FOR_TWO_CLASSES if output == (1,) else None,
                                                    loss=loss.name, shape=show_shape(output)))
                return
            if data and data.target_width and data.task == "multilabel":
                fix = m.CLASS_INDEX_VS_LABELS.at(span, loss=loss.name, data=data.name, width=data.target_width)
            elif classes is not None and output[0] != classes:
                fix = m.UNITS_VS_CLASSES.at(span, units=_units(output), data=data.name, classes=classes)
            elif data and data.task == "regression":
                fix = m.CLASSES_VS_REGRESSION.at(span, loss=loss.name, data=data.name)
        elif loss.task == "binary":
            if len(output) != 1:
                self.report(m.OUTPUT_NOT_FLAT.at(span, loss=loss.name, shape=show_shape(output)))
                return
            if classes is not None and classes != 2:
                fix = m.TWO_CLASSES_VS_MORE.at(span, loss=loss.name, data=data.name, classes=classes)
            elif classes == 2 and output[0] != 1:
                fix = m.UNITS_VS_TWO_CLASSES.at(span, loss=loss.name, data=data.name, got=output[0])
            elif data and data.target_width and data.task != "classification" and output[0] != data.target_width:
                fix = m.UNITS_VS_LABELS.at(span, units=_units(output), data=data.name,
                                           per_example=m.LABELS.of(data.target_width), width=data.target_width)
        else:
            if classes is not None:
                fix = m.REGRESSION_VS_CLASSES.at(span, loss=loss.name, data=data.name)
            elif data and data.target_width and output != (data.target_width,):
                fix = m.UNITS_VS_TARGETS.at(span, units=_units(output), data=data.name,
                                            per_example=m.TARGET_VALUES.of(data.target_width), width=data.target_width)
        if fix:
            self.report(fix)
        elif loss.probability and activation not in (loss.probability, "linear"):
            self.report(m.OUTPUT_ACTIVATION.at(span, loss=loss.name, expected=loss.probability, activation=activation))

    def check_class_weight(self, loss: _Bound, entry: reg.Loss, output: tuple[int, ...]) -> None:
        """Class weights need one class per example: not several binary labels at once."""
        option = loss.statement.option("class_weight")
        if loss.args.get("class_weight") and entry.task == "binary" and output[-1] != 1:
            self.report(m.CLASS_WEIGHT_LABELS.at(option.span, units=m.UNITS.of(output[-1])))

    def check_metrics(self, loss: reg.Loss | None, output: tuple[int, ...] | None) -> None:
        bound = self.settings.get("metrics")
        if not bound:
            return
        seen: dict[str, n.Value] = {}
        for value, name in zip(bound.statement.positionals, bound.args.get("names", ()), strict=True):
            if name is _UNKNOWN:
                continue
            if name in seen:
                self.report(m.METRIC_TWICE.at(value.span, name=name,
                                              labels=(Label(seen[name].span, m.FIRST_LISTED_HERE),)))
                bound.ok = False
                continue
            seen[name] = value
            metric = reg.lookup("metric", name)
            if loss is not None and metric.needs_classification and loss.task == "regression":
                self.report(m.METRIC_VS_REGRESSION.at(value.span, name=name, loss=loss.name))
                bound.ok = False
            elif loss is not None and metric.needs_binary and (loss.task != "binary" or (output or (1,))[-1] != 1):
                what = m.NOT_BINARY_LOSS.format(loss=loss.name) if loss.task != "binary" else \
                    m.NOT_ONE_UNIT.format(units=m.UNITS.of(output[-1]))
                self.report(m.METRIC_NOT_BINARY.at(value.span, name=name, what=what))
                bound.ok = False

    def check_early_stop(self, data: ir.Data | None) -> ir.EarlyStop | None:
        bound = self.settings.get("early_stop")
        if bound is None or not bound.ok:
            return None
        a, node = bound.args, bound.statement
        monitor = a["monitor"]
        metrics = self.settings.get("metrics")
        listed = [name for name in (metrics.args.get("names", ()) if metrics else ()) if name is not _UNKNOWN]
        known = ["loss", "val_loss"] + listed + [f"val_{name}" for name in listed]
        if monitor not in known:
            if reg.lookup("metric", monitor.removeprefix("val_")) and self.mentioned("metrics") \
                    and not (metrics and metrics.ok):
                return None  # the `metrics` statement is broken or misspelled: it was reported there
            where = node.option("monitor")
            self.report(m.NOT_COMPUTED.at(where.value.span if where else node.span, monitor=monitor,
                                          known=m.quoted(known), hint=self.monitor_hint(monitor, known)))
            return None
        if monitor.startswith("val_") and data is not None and not data.has_val:
            split = m.HOLD_OUT_BUILTIN.format(name=data.name) if data.source == "builtin" else m.HOLD_OUT_FILE
            self.report(m.NO_VALIDATION_DATA.at(node.span, monitor=monitor, split=split))
            return None
        base = reg.lookup("metric", monitor.removeprefix("val_"))
        mode = "max" if base is not None and base.higher_is_better and monitor.removeprefix("val_") != "loss" else "min"
        return ir.EarlyStop(a["patience"], monitor, a["min_delta"], a["restore_best"], mode)

    @staticmethod
    def monitor_hint(monitor: str, known: list[str]) -> str | None:
        """The closest quantity that is computed, or could be with one more metric; None when none is close."""
        could = [prefix + name for name in reg.names("metric") for prefix in ("", "val_")]
        guess = closest(monitor, known + [q for q in could if q not in known])
        if guess is None:
            return None  # the message's own hint lists what is computed
        if guess in known:
            return m.DID_YOU_MEAN.format(guess=guess)
        hint = m.METRIC_NEEDED if guess == monitor else m.METRIC_GUESS
        return hint.format(guess=guess, metric=guess.removeprefix("val_"))

    def warn_missing(self, input_shape: Any, data: ir.Data | None) -> None:
        if input_shape is None and data is None and not self.mentioned("input") and not self.mentioned("data") \
                and not self.training:
            first = next((x for x in self.layers if isinstance(x, n.Statement)), None)
            if first is not None:
                self.report(m.INPUT_UNKNOWN.at(first.span))
        for name, missing, refusal in (("loss", m.NO_LOSS, m.NO_LOSS_TO_TRAIN),
                                       ("optimizer", m.NO_OPTIMIZER, m.NO_OPTIMIZER_TO_TRAIN)):
            if not self.mentioned(name):
                self.report((refusal if self.training else missing).at(
                    self.file_start, setting=name, example=reg.lookup("statement", name).example))


def _entry_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "name"}


def _units(shape: tuple[int, ...]) -> str:
    """An output's size in words: `3 units`, or `shape 6x6x4` when it is not flat."""
    return m.UNITS.of(shape[0]) if len(shape) == 1 else m.OUTPUT_SHAPE.format(shape=show_shape(shape))


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
