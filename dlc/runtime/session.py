"""A trained (or training) program: data prepared, state on the device, and the normalization and
label mapping that evaluation and prediction must reuse. `Program` delegates here."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from dlc.compiler import ir
from dlc.runtime import data as data_mod
from dlc.runtime import measures, sources, tabular
from dlc.runtime.distributed import least, same_everywhere, together
from dlc.runtime.loop import FitResult, fit
from dlc.runtime.memory import device_data_budget, guard_memory
from dlc.runtime.options import FitOptions
from dlc.runtime.stopping import Progress
from dlc.runtime.table import Table
from dlc.runtime.train import Trainer, TrainState, abstract_state, init_state, input_dtype, make_trainer
from dlc.runtime.transfer import start_from_run

if TYPE_CHECKING:
    from dlc.runtime.runfolder import RunRecord


class SpecOwner(Protocol):
    """What a session needs of the spec it trains (the API's `Program` is one): the IR checked from
    the spec alone, the folder its relative paths start at, and a check again with the facts of
    the data as loaded. The runtime holds it, and never builds one."""

    ir: ir.Program
    diagnostics: list

    @property
    def base_dir(self) -> Path: ...

    def recheck(self, arrays: ir.Data | None, warn: bool = False) -> ir.Program: ...


def _restore_unnamed(run_dir: Path, program: ir.Program, target: dict) -> dict | None:
    """The checkpoint of a run saved before layers had names, whose trees are keyed by Flax's
    auto names (`Dense_0`): restored under those names and renamed to the layers' (`dense_1`).
    None when it is not one either."""
    from dlc.compiler.lower import legacy_names
    from dlc.runtime.storage import restore_checkpoint

    legacy = legacy_names(program)
    if all(old == new for old, new in legacy.items()):
        return None
    old_name = {new: old for old, new in legacy.items()}
    try:
        restored = restore_checkpoint(run_dir / "checkpoint", {part: {old_name.get(k, k): v for k, v in tree.items()}
                                                              for part, tree in target.items()})
    except Exception:  # not that layout either: the caller reports the first failure
        return None
    return {part: {legacy.get(k, k): v for k, v in tree.items()} for part, tree in restored.items()}


def _with_classes(facts: ir.Data, labels: list[np.ndarray], loss_task: str) -> ir.Data:
    """`facts` with the number of classes the loaded labels hold (as the encoders in `data` will
    count them), so that the checker's rules on output units against classes (E501, E503) hold
    for files and arrays as they do for a built-in dataset, whose registry entry knows its classes.
    Whole floats are class labels here too. Labels that are no classes are left to `prepare`."""
    if loss_task == "regression" or any(y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) for y in labels):
        return facts
    labels = [y.reshape(-1) for y in labels]
    if any(y.dtype.kind == "f" and not np.array_equal(y, np.round(y)) for y in labels):
        return facts
    found = set().union(*(np.unique(y).tolist() for y in labels))
    classes = 2 if loss_task == "binary" and found <= {0, 1} else len(found)
    return dataclasses.replace(facts, task="classification", classes=classes)


def _arrays_facts(x: np.ndarray, y: np.ndarray, spec_data: ir.Data | None, has_val: bool,
                  val: float | None) -> ir.Data:
    """What the checker needs to know about arrays given to `fit`, in the spec's data options
    (`val`, when not None, in place of the spec's)."""
    integer = y.ndim == 1 and (y.dtype.kind in "biu" or y.dtype.kind in "USO")
    task = "classification" if integer else ("regression" if y.ndim <= 1 or y.shape[1] == 1 else "multilabel")
    d = spec_data
    test = d.test if d else 0.0
    val = val if val is not None else d.val if d else 0.0
    # Named `y`: the labels are what the output-against-data rules speak of (E404 says `x`).
    return ir.Data("arrays", "y", None, val, test, d.normalize if d else "none", d.shuffle if d else True,
                   None, tuple(int(s) for s in x.shape[1:]), task, None, 1 if y.ndim == 1 else int(y.shape[1]),
                   has_val or val > 0, test > 0)


def _split(program: ir.Program, x: np.ndarray, y: np.ndarray, given: dict, labels: list | None = None,
           source: sources.Source | str = "the arrays", normalization: dict | None = None,
           encoding: Any = None) -> data_mod.Prepared:
    """The program's data split, encoded and normalized as its `data` options say (with `labels`,
    `normalization` and a CSV's `encoding`, those of a trained model); the same seed gives the same
    split, so evaluation sees the parts training saw."""
    d = program.data
    if isinstance(x, Table):
        prepared, _ = tabular.split_of(program, x, y, source, program.seed, labels=labels,
                                       normalization=normalization, encoding=encoding)
        return tabular.shaped(prepared, program.input_shape)
    return data_mod.prepare(
        x, y, task=program.task, input_shape=program.input_shape,
        output_units=program.output_shape[-1] if program.output_shape else None,
        val=0.0 if "val" in given else d.val, test=0.0 if "test" in given else d.test,
        normalize=d.normalize, shuffle=d.shuffle, seed=program.seed, given=given, labels=labels, source=source,
        normalization=normalization, tokens=program.token_vocab)


class ResumeError(Exception):
    """A run that cannot be resumed: one line saying why (nothing saved, or the spec changed)."""


class Session:
    def __init__(self, owner: SpecOwner, program: ir.Program, trainer: Trainer, state: TrainState,
                 prepared: data_mod.Prepared, result: FitResult | None, arrays: ir.Data | None):
        self.owner, self.program, self.trainer, self.state = owner, program, trainer, state
        self.prepared, self.result, self.arrays = prepared, result, arrays

    @property
    def history(self) -> list[dict[str, float]]:
        return self.result.history if self.result else []

    @property
    def epochs_trained(self) -> int:
        """The number of the last epoch trained: a fit that goes on from this state numbers its
        epochs (and so draws its shuffles and dropout masks) from the next. A run folder
        reloaded counts from 0."""
        return int(self.history[-1]["epoch"]) if self.history else 0

    @property
    def classes(self) -> list | None:
        """The class label of each output of a classifier (a one-unit binary output: the two
        labels, the output the probability of the second); None for regression and multi-label."""
        one_label = self.program.task == "categorical" or (
            self.program.task == "binary" and self.program.output_shape[-1] == 1)
        return list(self.prepared.labels) if one_label and self.prepared.labels is not None else None

    @classmethod
    def prepare(cls, owner: SpecOwner, x: Any, y: Any, validation_data: Any, options: FitOptions,
                previous: Session | None = None) -> tuple[ir.Program, data_mod.Prepared, ir.Data | None]:
        """Check the spec against the data it will train on, then load, split and normalize it
        (as `previous`, the trained model a fit goes on from, normalized and labelled its own).
        The spec is checked again once the data is loaded, with what only the data tells (its
        classes): a mismatch is an error in the spec before anything trains."""
        if x is None:
            if owner.ir.data is None:
                raise ValueError(f"program {owner.ir.name!r} has no `data` statement: pass x and y to fit(), "
                                 "or add `data SOURCE` to the spec")
            facts, arrays = owner.recheck(None).data, None  # the spec's own errors first, before loading
            x_raw, y_raw, given, source = sources.load_source(facts)
            if options.validation_split is not None:
                if "val" in given:
                    raise ValueError(f"{source} brings its own validation examples (`x_val`): "
                                     "drop validation_split")
                facts = dataclasses.replace(facts, val=options.validation_split,
                                            has_val=options.validation_split > 0)
        else:
            x_raw, y_raw = np.asarray(x), np.asarray(y)
            given, source = {}, "the arrays"
            if validation_data is not None:
                given["val"] = (np.asarray(validation_data[0]), np.asarray(validation_data[1]))
            facts = arrays = _arrays_facts(x_raw, y_raw, owner.ir.data, validation_data is not None,
                                           options.validation_split)
        if options.validation_split is not None and facts.val + facts.test >= 1:
            raise ValueError(f"validation_split={facts.val:g} and the spec's `test={facts.test:g}` hold out "
                             "every example: nothing is left to train on")
        kept = {} if previous is None else {"labels": previous.prepared.labels,
                                            "normalization": previous.prepared.normalization}
        encoded = None
        if isinstance(x_raw, Table):  # a CSV's cells to encode: the features' widths are known once fitted
            seed = options.seed if options.seed is not None else owner.ir.seed
            encoded, y_raw = tabular.split_of(dataclasses.replace(owner.ir, data=facts), x_raw, y_raw, source, seed,
                                              encoding=previous.prepared.encoding if previous else None, **kept)
            facts = dataclasses.replace(facts, features=encoded.train.x.shape[1:],
                                        categorical=encoded.encoding.categorical)
        facts = _with_classes(facts, [y_raw, *(part_y for _, part_y in given.values())], owner.ir.task)
        facts = dataclasses.replace(facts, examples=len(y_raw))
        program = owner.recheck(facts, warn=True)
        arrays = facts if arrays is not None else None
        changes = {k: v for k, v in (("seed", options.seed), ("epochs", options.epochs), ("batch", options.batch))
                   if v is not None}
        program = dataclasses.replace(program, **changes)
        if encoded is not None:
            prepared = tabular.shaped(encoded, program.input_shape)
        else:
            prepared = _split(program, x_raw, y_raw, given, source=source, **kept)
        # `class_weight=balanced`: the weights of the training split's classes, which the training loss uses.
        program = dataclasses.replace(program, class_weights=measures.class_weights(program, prepared.train.y))
        for message in prepared.warnings:
            warnings.warn(data_mod.DataWarning(message), stacklevel=2)
        return program, prepared, arrays

    @classmethod
    def fit(cls, owner: SpecOwner, x: Any, y: Any, validation_data: Any, options: FitOptions,
            previous: Session | None = None) -> Session:
        """Train `owner`'s spec on (x, y), or on its `data` when they are None, as `options` say;
        from the state of `previous`, a trained session of the same spec, when there is one."""
        started = time.perf_counter()
        with together():  # in a distributed run, a process that cannot start stops every process
            program, prepared, arrays = cls.prepare(owner, x, y, validation_data, options, previous)
            first_epoch = previous.epochs_trained if previous is not None else 0
            epochs = program.epochs
            program = dataclasses.replace(program, epochs=first_epoch + epochs)
            prepared_at = time.perf_counter()
            data_time = prepared_at - started
            budget = options.data_budget if options.data_budget is not None else device_data_budget()
            guard_memory(program, prepared, budget)
            trainer = make_trainer(program, len(prepared.train.x), epochs, options.devices)
        same_everywhere(program.source, *prepared.arrays())
        budget = least(budget)
        val = (prepared.val.x, prepared.val.y) if prepared.val is not None else None
        checkpoints, restored = None, None
        with contextlib.ExitStack() as held:
            if (checkpoint_dir := options.checkpoint_dir) is not None:
                from dlc.runtime.checkpoints import TrainingCheckpoints, refuse_linked_folder
                from dlc.runtime.identity import run_identity
                from dlc.runtime.runlock import RunLock
                from dlc.runtime.storage import StorageError

                # One writer per checkpoint folder: a second fit into it is refused (RunLockedError)
                # before it reads or clears anything there.
                refuse_linked_folder(checkpoint_dir)
                try:
                    checkpoint_dir.mkdir(parents=True, exist_ok=True)
                    held.enter_context(RunLock(checkpoint_dir))
                except OSError as e:
                    raise StorageError(f"cannot lock the checkpoint folder `{checkpoint_dir}`: "
                                       f"{e.strerror or e}; nothing was trained or written") from None
                identity = run_identity(program.source, program.seed, program.epochs)
                checkpoints = TrainingCheckpoints(checkpoint_dir, identity, options.checkpoint_interval)
                held.callback(checkpoints.close)
                if options.resume:
                    restored = cls.resume_from(checkpoints, trainer, program, identity)
            started = time.perf_counter()
            setup_time = started - prepared_at  # the memory guard, the trainer, the checkpoint folder (Orbax)
            if restored is not None:
                state, best, progress = restored
                resume_args = (progress, best)
            elif previous is not None:
                state, resume_args = previous.state_for(trainer), (Progress(epoch=first_epoch), None)
            else:
                state, resume_args = init_state(trainer, program.input_shape, program.seed), None
                state, _ = start_from_run(state, program, trainer.tx)
            jax.block_until_ready(state)
            init_time = time.perf_counter() - started
            result = fit(trainer, state, (prepared.train.x, prepared.train.y), val,
                         dataclasses.replace(options, data_budget=budget), checkpointer=checkpoints,
                         resume=resume_args)
            result.timings = {"data": data_time, "setup": setup_time, "init": init_time, **result.timings}
        return cls(owner, program, trainer, result.state, prepared, result, arrays)

    @classmethod
    def restore(cls, run_dir: Path, owner: SpecOwner, record: RunRecord) -> Session:
        """The trained session of a run folder (its record read by `runfolder.read_run`), for
        `owner`, whose spec is checked again as the record says."""
        from dlc.runtime.runfolder import bad_field
        from dlc.runtime.storage import RunFolderError, restore_checkpoint

        program = dataclasses.replace(owner.recheck(record.facts), seed=record.seed)
        normalization, labels, columns = record.normalization, record.labels, record.columns
        features = math.prod(program.input_shape)
        if record.encoding is not None and record.encoding.width != features:
            raise bad_field(run_dir / "preprocessing.json", "encoding", f"columns of {features} features, the "
                            "inputs of the model", record.encoding.to_json())
        ids = record.encoding.token_ids if record.encoding is not None else 0
        if ids and ids > (program.token_vocab or 0):  # an id past the embedding's would be clamped, silently
            room = max((program.token_vocab or 2) - 2, 0)
            raise bad_field(run_dir / "preprocessing.json", "encoding[0].vocab",
                            f"at most {room} tokens, which the model's `embedding` has ids for", ids - 2)
        if normalization["kind"] != "none" and len(normalization["shift"]) != features:
            raise bad_field(run_dir / "preprocessing.json", "normalization.shift", f"{features} numbers, one per "
                             "input of the model", normalization["shift"])
        if columns and record.encoding is None and len(columns) != features:
            raise bad_field(run_dir / "preprocessing.json", "columns", f"{features} names, one "
                             "per input of the model", list(columns))
        classes = {"categorical": program.output_shape[-1], "binary": 2}.get(program.task)
        if classes is not None and (labels is None or len(labels) != classes):
            raise bad_field(run_dir / "preprocessing.json", "labels", f"{classes} class labels, one per class "
                             "of the model", labels)
        trainer = make_trainer(program, 1, 1)
        abstract = abstract_state(trainer, program.input_shape)
        target = {"params": abstract.params, "batch_stats": abstract.batch_stats}
        try:
            restored = restore_checkpoint(run_dir / "checkpoint", target)
        except Exception as e:  # orbax raises many types for a missing or damaged checkpoint
            restored = _restore_unnamed(run_dir, program, target)
            if restored is None:
                raise RunFolderError(f"cannot restore the checkpoint of `{run_dir}`: "
                                     f"{str(e).splitlines()[0][:200]}") from None
        state = TrainState(restored["params"], restored["batch_stats"], None)
        empty = data_mod.Split(np.zeros((0, *program.input_shape), input_dtype(program)), np.zeros((0,), np.int32))
        prepared = data_mod.Prepared(empty, None, None, normalization, labels, columns, encoding=record.encoding)
        return cls(owner, program, trainer, state, prepared, None, record.arrays)

    def state_for(self, trainer: Trainer) -> TrainState:
        """A copy of this session's parameters, batch statistics and optimizer state, to train on
        with `trainer` (of the same spec): training donates the state it is given, and arrays the
        caller took from `variables` must outlive the next fit. The optimizer state starts afresh
        where there is none (a reloaded run keeps none) or its layout differs."""
        opt_state = self.state.opt_state
        fresh = jax.eval_shape(trainer.tx.init, self.state.params)
        if opt_state is None or jax.tree.structure(opt_state) != jax.tree.structure(fresh):
            opt_state = trainer.tx.init(self.state.params)
        return jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))(
            TrainState(self.state.params, self.state.batch_stats, opt_state))

    @staticmethod
    def resume_from(checkpoints, trainer: Trainer, program: ir.Program, identity: dict):
        """The newest complete checkpoint of a run to continue, after making sure it is the same
        run; None, with a warning, when there is none (training starts again: the same numbers)."""
        from dlc.runtime.identity import resume_changes
        from dlc.runtime.runfolder import refuse_links

        run_dir = checkpoints.folder.parent
        if (run_dir / "spec.dl").exists():  # a run folder: refused before training, not after it
            refuse_links(run_dir)

        def same_run(meta: dict) -> None:
            changed = resume_changes(meta, identity)
            if changed:
                raise ResumeError(f"cannot resume: {', '.join(changed)} changed since the run started")

        return checkpoints.restore(abstract_state(trainer, program.input_shape), same_run)

    # --- using the trained model ---------------------------------------------------------

    def _evaluate_split(self, split: data_mod.Split) -> dict[str, float]:
        return self.trainer.evaluate(self.state.params, self.state.batch_stats, self.trainer.eval_set(split.x, split.y))

    def split_metrics(self) -> dict[str, dict[str, float]]:
        """Loss and metrics of the final parameters on every split that exists."""
        out = {}
        for name in ("train", "val", "test"):
            split = getattr(self.prepared, name)
            if split is not None and len(split.x):
                out[name] = self._evaluate_split(split)
        return out

    def evaluate_spec_splits(self) -> dict[str, dict[str, float]]:
        """Reload the spec's data, split it as training did (same seed), and evaluate every split."""
        if self.program.data is None or self.program.data.source == "arrays":
            raise ValueError("this run was trained on arrays: give a data file to evaluate on")
        x, y, given, source = sources.load_source(self.program.data, self.prepared.columns)
        kept = {"normalization": self.prepared.normalization, "encoding": self.prepared.encoding} \
            if isinstance(x, Table) else {}
        self.prepared = _split(self.program, x, y, given, self.prepared.labels, source, **kept)
        return self.split_metrics()

    def _inputs(self, x: Any, source: sources.Source | str, predicting: bool = False) -> np.ndarray:
        table = tabular.rows_of(x, source, self.prepared.encoding)
        if table is not None:
            return tabular.features(table, self.prepared, self.program.input_shape, self.program.data.missing,
                                    source, predicting)
        return data_mod.apply_normalization(np.asarray(x), self.prepared.normalization, self.program.input_shape,
                                            source, self.program.token_vocab)

    def evaluate(self, x: Any = None, y: Any = None, source: sources.Source | str = "the arrays"
                 ) -> dict[str, float]:
        if x is None:
            if not len(self.prepared.train.x):  # loaded from a run folder, which keeps no data: reload it
                self.evaluate_spec_splits()
            split = self.prepared.test or self.prepared.val or self.prepared.train
            return self._evaluate_split(split)
        return self._evaluate_split(self.labelled(x, y, source))

    def labelled(self, x: Any, y: Any, source: sources.Source | str = "the arrays") -> data_mod.Split:
        """Examples and their labels as the model was trained on them: normalized, labels encoded."""
        table = tabular.rows_of(x, source, self.prepared.encoding)
        if table is not None:
            table, y = tabular.kept_rows(table, np.asarray(y), self.program.data.missing, source,
                                         self.prepared.encoding)
            return data_mod.Split(self._inputs(table, source), tabular.encoded_labels(
                y, self.program.task, self.prepared.labels, self.program.output_shape[-1], source))
        prepared = data_mod.prepare(
            np.asarray(x), np.asarray(y), task=self.program.task, input_shape=self.program.input_shape,
            output_units=self.program.output_shape[-1], val=0.0, test=0.0, normalize="none", shuffle=False,
            seed=self.program.seed, labels=self.prepared.labels, source=source, tokens=self.program.token_vocab)
        return data_mod.Split(self._inputs(x, source), prepared.train.y)

    def predict(self, x: Any, source: sources.Source | str = "the arrays") -> np.ndarray:
        return self.trainer.predict(self.state.params, self.state.batch_stats, self._inputs(x, source, True))

    def save(self, run_dir: Path) -> Path:
        from dlc.runtime.runfolder import save_trained

        return save_trained(run_dir, self)


def prediction_rows(session: Session, outputs: np.ndarray) -> list[list]:
    """CSV rows for `dlc predict`: the predicted label (classification) or values, then the
    probability of each class or label."""
    labels = session.prepared.labels
    task = session.program.task
    if task == "categorical":
        names = [str(label) for label in (labels or range(outputs.shape[-1]))]
        header = ["prediction", *(f"p_{name}" for name in names)]
        return [header] + [[names[int(np.argmax(row))], *(f"{p:.6g}" for p in row)] for row in outputs]
    if task == "binary" and outputs.shape[-1] == 1 and labels:
        names = [str(label) for label in labels]
        return [["prediction", f"p_{names[-1]}"]] + [[names[int(row[0] > 0.5)], f"{row[0]:.6g}"] for row in outputs]
    width = outputs.shape[-1]
    header = ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
    return [header] + [[f"{v:.6g}" for v in row] for row in outputs.reshape(len(outputs), -1)]
