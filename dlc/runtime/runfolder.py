"""Run folders: what `dlc run` leaves behind and `dlc eval`/`predict`/`dlc.load_run` read back.

    spec.dl             the spec as it was run
    history.csv         a row per epoch: epoch, loss, metrics, val_ columns, lr, epoch_time (s)
    metrics.json        epochs_run, stopped_early, best_epoch, and loss/metrics per split
    checkpoint/         final (or restored best) parameters and batch statistics (Orbax)
    preprocessing.json  normalization, label mapping and feature columns, fitted on the training part
    curves.png          loss and metrics per epoch, the best epoch and an early stop marked
    run.json            versions, device, seed, spec hash, wall time, where the spec came from, and the facts
                        of the data it trained on (so that reloading it reads no data file)
    tensorboard/        with `dlc run --tensorboard`: TensorBoard event files of every epoch (train/, validation/)
    confusion.png       from `dlc eval --report` of a classifier: its confusion matrix
    residuals.png       from `dlc eval --report` of a regression: its residuals
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import jax

from dlc.compiler import ir
from dlc.runtime.encoding import Encoding, record_problem
from dlc.runtime.identity import spec_sha256
from dlc.runtime.runlock import write_atomically
from dlc.runtime.storage import RunFolderError, refuse_link, save_checkpoint, storage_faults
from dlc.runtime.transfer import init_record

if TYPE_CHECKING:
    from dlc.runtime.session import Session


# The parts of a run folder: dlc writes and deletes only these, and none may be a symbolic link.
PARTS = ("spec.dl", "history.csv", "metrics.json", "checkpoint", "preprocessing.json", "curves.png", "run.json",
         "training", "tensorboard", "confusion.png", "residuals.png")


def refuse_links(run_dir: Path) -> None:
    """Run folders are shared, downloaded and committed: a part of one that is a symbolic link
    would have dlc overwrite or delete whatever it points at, so such a folder is refused."""
    for name in PARTS:
        refuse_link(run_dir / name, "; replace it with the file itself, or use another run folder")


def _write_json(path: Path, value: object) -> None:
    write_atomically(path, (json.dumps(value, indent=2) + "\n").encode())


def _kept(run_dir: Path) -> str:
    """What a failed write of a run folder leaves to continue from."""
    if any(step.name.isdigit() for step in (run_dir / "training").glob("*")):
        return (f"the training checkpoints in `{run_dir / 'training'}` are kept: once it can be written, "
                "`--resume` writes the run folder")
    return "the run folder is incomplete"


def _writing(run_dir: Path, name: str) -> contextlib.AbstractContextManager:
    return storage_faults(run_dir / name, _kept(run_dir))


def save_trained(run_dir: Path, session: Session) -> Path:
    """The parts of a run folder that reload a trained program."""
    with storage_faults(run_dir, _kept(run_dir)):
        run_dir.mkdir(parents=True, exist_ok=True)
    refuse_links(run_dir)
    program = session.program
    with _writing(run_dir, "spec.dl"):
        write_atomically(run_dir / "spec.dl", program.source.encode())
    with _writing(run_dir, "checkpoint"):
        save_checkpoint(run_dir / "checkpoint", {"params": session.state.params,
                                                 "batch_stats": session.state.batch_stats})
    with _writing(run_dir, "preprocessing.json"):
        encoding = session.prepared.encoding
        _write_json(run_dir / "preprocessing.json", {"normalization": session.prepared.normalization,
                                                     "labels": session.prepared.labels,
                                                     "columns": list(session.prepared.columns),
                                                     "encoding": encoding.to_json() if encoding else None})
    with _writing(run_dir, "run.json"):
        _write_json(run_dir / "run.json", _run_json(session))
    return run_dir


def _run_json(session: Session) -> dict:
    import flax
    import optax

    from dlc.version import __version__

    program = session.program
    return {
        "dlc": __version__, "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
        "python": platform.python_version(), "device": str(jax.devices()[0]), "backend": jax.default_backend(),
        "seed": program.seed, "epochs": program.epochs,
        "spec_sha256": spec_sha256(program.source),
        "spec_path": str(Path(program.path).resolve()) if not program.path.startswith("<") else program.path,
        "spec_dir": str(session.owner.base_dir.resolve()),
        "arrays": dataclasses.asdict(session.arrays) if session.arrays else None,
        "data": dataclasses.asdict(program.data) if program.data else None,
        "wall_time": session.result.wall_time if session.result else None,
        "init": init_record(program),  # where the initial weights came from: a run and its spec's hash
    }


def write_history(run_dir: Path, history: list[dict]) -> None:
    """history.csv, a row per epoch; written to a temporary file and renamed, never half-written."""
    if not history:
        return
    refuse_links(run_dir)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(history[0]))
    writer.writeheader()
    for row in history:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    with _writing(run_dir, "history.csv"):
        write_atomically(run_dir / "history.csv", text.getvalue().encode())


def write_run(run_dir: Path, session: Session) -> dict:
    """A whole run folder after `dlc run`; returns the metrics written to metrics.json."""
    save_trained(run_dir, session)
    history = session.history
    write_history(run_dir, history)
    result = session.result
    metrics = {"epochs_run": len(history), "stopped_early": bool(result and result.stopped_early),
               "best_epoch": result.best_epoch if result else 0, **session.split_metrics()}
    with _writing(run_dir, "metrics.json"):
        _write_json(run_dir / "metrics.json", metrics)
    if history:
        from dlc.runtime.plots import curves_figure

        best = metrics["best_epoch"] if session.program.early_stop else None
        write_figure(run_dir, "curves.png", curves_figure(history, session.program.name, best,
                                                          metrics["stopped_early"]))
    return metrics


def write_figure(run_dir: Path, name: str, figure, kept: str | None = None) -> Path:
    """A figure of `plots` as the PNG `name` of a run folder, written whole or not at all, never
    through a link; its path. `kept`: what a failed write leaves (default: as `dlc run` tells it)."""
    from dlc.runtime.plots import png

    refuse_links(run_dir)
    with storage_faults(run_dir / name, kept or _kept(run_dir)):
        write_atomically(run_dir / name, png(figure))
    return run_dir / name


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"`{path.parent}` is not a run folder: it has no `{path.name}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f"cannot read `{path}`: {e}") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"`{path}` does not hold a JSON object")
    return value


def bad_field(path: Path, name: str, expected: str, value: object) -> RunFolderError:
    shown = json.dumps(value)
    return RunFolderError(f"`{path}`: `{name}` must be {expected}, got {shown[:60]}")


def _is_count(value: object, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_fraction(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1


# What each field of a recorded `ir.Data` may hold, and the check of it.
DATA_FIELDS = {
    "source": ("one of builtin, csv, npz, arrays", lambda v: v in ("builtin", "csv", "npz", "arrays")),
    "name": ("text", lambda v: isinstance(v, str)),
    "path": ("a path or null", lambda v: v is None or isinstance(v, str)),
    "val": ("a fraction", _is_fraction),
    "test": ("a fraction", _is_fraction),
    "normalize": ("one of none, standard, minmax", lambda v: v in ("none", "standard", "minmax")),
    "shuffle": ("true or false", lambda v: isinstance(v, bool)),
    "target": ("a column name or null", lambda v: v is None or isinstance(v, str)),
    "features": ("a list of positive integers or null",
                 lambda v: v is None or isinstance(v, list) and all(_is_count(d, 1) for d in v)),
    "task": ("one of classification, regression, multilabel, unknown",
             lambda v: v in ("classification", "regression", "multilabel", "unknown")),
    "classes": ("a positive integer or null", lambda v: v is None or _is_count(v, 1)),
    "target_width": ("a positive integer or null", lambda v: v is None or _is_count(v, 1)),
    "has_val": ("true or false", lambda v: isinstance(v, bool)),
    "has_test": ("true or false", lambda v: isinstance(v, bool)),
    "examples": ("a count or null", lambda v: v is None or _is_count(v)),
    "tokens": ("true or false", lambda v: isinstance(v, bool)),
    "vocab": ("a count of at least 3 or null", lambda v: v is None or _is_count(v, 3)),
    "missing": ("one of error, mean, drop", lambda v: v in ("error", "mean", "drop")),
    "text": ("a column name or null", lambda v: v is None or isinstance(v, str)),
    "tokenize": ("one of word, char", lambda v: v in ("word", "char")),
    "categorical": ("a list of [column, width] pairs",
                    lambda v: isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                                                          and _is_count(p[1], 1) for p in v)),
}


def _data_record(record: object, path: Path, name: str) -> ir.Data | None:
    """The facts of the data a run trained on, as run.json records them under `name`, checked: the
    spec is checked again with these, so that no data file is read to reload a run."""
    if record is None:
        return None
    fields = {f.name: f for f in dataclasses.fields(ir.Data)}
    required = {field for field, f in fields.items() if f.default is dataclasses.MISSING}
    if not isinstance(record, dict) or not required <= set(record) <= set(fields):
        raise bad_field(path, name, f"a record of {', '.join(fields)}", record)
    for field, value in record.items():
        expected, valid = DATA_FIELDS[field]
        if not valid(value):
            raise bad_field(path, f"{name}.{field}", expected, value)
    return ir.Data(**{**record, "features": tuple(record["features"]) if record["features"] else None,
                      "categorical": tuple(tuple(pair) for pair in record.get("categorical", ()))})


def _run_record(run: dict, path: Path) -> tuple[int, str, ir.Data | None, ir.Data | None]:
    """The seed, the spec's folder, and the facts of arrays given to fit and of the data trained
    on, from run.json, checked."""
    seed = run.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise bad_field(path, "seed", "an integer in [0, 2^32)", seed)
    spec_dir = run.get("spec_dir") or "."
    if not isinstance(spec_dir, str):
        raise bad_field(path, "spec_dir", "a folder path", spec_dir)
    return seed, spec_dir, _data_record(run.get("arrays"), path, "arrays"), _data_record(run.get("data"), path, "data")


def _preprocessing_record(pre: dict, path: Path) -> tuple[dict, list | None, tuple[str, ...], Encoding | None]:
    """The normalization, label mapping, feature columns and a CSV's column encoding (absent from the
    folders of an older dlc: numbers only) from preprocessing.json, checked."""
    normalization = pre.get("normalization") or {"kind": "none"}
    if not isinstance(normalization, dict) or normalization.get("kind") not in ("standard", "minmax", "none"):
        raise bad_field(path, "normalization", "a record with `kind` standard, minmax or none", normalization)
    for name in ("shift", "scale"):
        if normalization["kind"] != "none" and name not in normalization:
            raise bad_field(path, f"normalization.{name}", "a list of finite numbers", None)
        values = normalization.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   and math.isfinite(v) for v in values):
            raise bad_field(path, f"normalization.{name}", "a list of finite numbers", values)
    shift, scale = normalization.get("shift", []), normalization.get("scale", [])
    if len(scale) != len(shift) or 0 in scale:
        raise bad_field(path, "normalization.scale", f"{len(shift)} numbers, none of them 0", scale)
    labels = pre.get("labels")
    if labels is not None and (not isinstance(labels, list) or len(set(map(json.dumps, labels))) != len(labels)
                               or not all(isinstance(v, (str, int)) or isinstance(v, float) and math.isfinite(v)
                                          for v in labels)):
        raise bad_field(path, "labels", "a list of distinct class labels (text or finite numbers)", labels)
    encoding = encoding_record(pre.get("encoding"), path)
    columns = pre.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns) \
            or len(set(columns)) != len(columns) or (columns and shift and encoding is None
                                                     and len(columns) != len(shift)):
        raise bad_field(path, "columns", "a list of distinct column names, one per feature", columns)
    if encoding is not None and sorted(r["column"] for r in encoding.columns) != sorted(columns):
        raise bad_field(path, "encoding", f"a record per column of `columns` ({len(columns)})", encoding.to_json())
    if encoding is not None and shift and len(shift) != encoding.width:
        raise bad_field(path, "normalization.shift", f"{encoding.width} numbers, one per encoded feature", shift)
    return normalization, labels, tuple(columns), encoding


def encoding_record(value: object, path: Path) -> Encoding | None:
    """The column encoding preprocessing.json records, checked; None where it records none (an older
    run, or data that needs none)."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise bad_field(path, "encoding", "a list of column records", value)
    for k, record in enumerate(value):
        problem = record_problem(record)
        if problem:
            raise bad_field(path, f"encoding[{k}]", problem, record)
    names = [record["column"] for record in value]
    texts = sum(record["kind"] == "text" for record in value)
    if len(set(names)) != len(names) or (texts and len(value) > 1):
        raise bad_field(path, "encoding", "one record per column: a text column alone, or columns without text",
                        names)
    return Encoding(tuple(value))


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What a run folder says of its run, read and checked: the spec as it trained, where its
    relative paths start, the seed, the facts of the data it trained on (`facts`: arrays given to
    fit, or the spec's data as recorded; None in a folder of an older dlc, which reads the data
    file), and the preprocessing that evaluation and prediction must repeat."""

    source: str
    spec_path: str
    spec_dir: str
    seed: int
    arrays: ir.Data | None
    facts: ir.Data | None
    normalization: dict
    labels: list | None
    columns: tuple[str, ...]
    encoding: Encoding | None = None


def read_run(run_dir: Path) -> RunRecord:
    """The record of a run folder, every file dlc reads checked; a RunFolderError naming what is wrong."""
    if not run_dir.is_dir():
        raise RunFolderError(f"no run folder at `{run_dir}`")
    run = _read_json(run_dir / "run.json")
    pre = _read_json(run_dir / "preprocessing.json")
    try:
        source = (run_dir / "spec.dl").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RunFolderError(f"cannot read the spec of `{run_dir}`: {e}") from None
    seed, spec_dir, arrays, data = _run_record(run, run_dir / "run.json")
    normalization, labels, columns, encoding = _preprocessing_record(pre, run_dir / "preprocessing.json")
    return RunRecord(source, str(run_dir / "spec.dl"), spec_dir, seed, arrays, arrays or data, normalization,
                     labels, columns, encoding)
