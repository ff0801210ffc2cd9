"""What leaves dlc: the StableHLO of a program's prediction and training epoch (`dlc compile
--emit hlo`), and a trained run exported (`dlc export`) as a serialized `jax.export` artifact of
prediction, weights and input normalization inside, or as a folder of plain Python and NumPy
files. Neither needs dlc to be used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dlc.compiler import ir
from dlc.compiler.emit_encoding import encodes_cells
from dlc.compiler.emit_py import emit_py
from dlc.runtime.runlock import write_atomically
from dlc.runtime.session import Session
from dlc.runtime.tabular import identity
from dlc.runtime.train import abstract_state, input_dtype, make_trainer


def _training_rows(program: ir.Program) -> int:
    """The examples an epoch trains on when the data's size is known (built-ins), else one batch."""
    d = program.data
    if d is None or d.examples is None:
        return program.batch
    held = sum(max(1, round(fraction * d.examples)) for fraction in (d.val, d.test) if fraction > 0)
    return max(1, d.examples - held)


def stablehlo_text(program: ir.Program) -> str:
    """The StableHLO (MLIR text) of prediction on one evaluation chunk and of one training epoch,
    each a module, with a comment naming the shapes it was traced at."""
    from dlc.runtime.train import EVAL_CHUNK

    rows = _training_rows(program)
    trainer = make_trainer(program, rows, program.epochs)
    state = abstract_state(trainer, program.input_shape)
    x = jax.ShapeDtypeStruct((rows, *program.input_shape), input_dtype(program))
    y = jax.ShapeDtypeStruct((rows,), jnp.int32) if program.task == "categorical" else \
        jax.ShapeDtypeStruct((rows, program.output_shape[-1]), jnp.float32)
    variables = {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}
    chunk = jax.ShapeDtypeStruct((EVAL_CHUNK, *program.input_shape), input_dtype(program))
    predict = trainer._predict_jit.lower(variables, chunk).as_text()
    epoch = trainer._train_epoch.lower(state, x, y, jax.random.key(0), 1).as_text()
    shape = "x".join(map(str, program.input_shape))
    return (f"// {program.name}: prediction of {EVAL_CHUNK} examples of {shape} (outputs after the output "
            f"activation)\n{predict}\n"
            f"// {program.name}: one training epoch of {rows} examples in batches of {trainer.batch}: "
            "(state, x, y, key, epoch) -> (state, mean loss and metrics)\n"
            f"{epoch}")


def _variables(session: Session) -> dict:
    state = session.state
    return jax.device_get({"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats
                                                      else {})})


def prediction_artifact(session: Session) -> bytes:
    """A serialized `jax.export` of prediction for any number of examples of raw features
    (examples, features) in float32: normalization, the model and its output activation, with
    the trained weights inside. `jax.export.deserialize(data).call(x)` runs it."""
    program = session.program
    if session.prepared.encoding is not None and session.prepared.encoding.reads_text:
        raise ValueError("`--format stablehlo` takes numeric features, but this run encodes categories or text "
                         "from its CSV (preprocessing.json, `encoding`), which the artifact would not")
    normalization = session.prepared.normalization
    variables = _variables(session)
    features = math.prod(program.input_shape)
    module = session.trainer.lowered.module
    shift = scale = None
    if normalization["kind"] != "none":
        shift = np.asarray(normalization["shift"], np.float32)
        scale = np.asarray(normalization["scale"], np.float32)

    def predict(x):
        flat = x.reshape(x.shape[0], features)
        if shift is not None:
            flat = (flat - shift) / scale
        return module.apply(variables, flat.reshape((x.shape[0], *program.input_shape)), train=False)

    examples = jax.export.symbolic_shape("examples")
    # Token ids go in as int32 (normalization is `none` for them), numbers as float32.
    exported = jax.export.export(jax.jit(predict))(jax.ShapeDtypeStruct((*examples, features), input_dtype(program)))
    return bytes(exported.serialize())


def flat_variables(variables: dict) -> dict[str, np.ndarray]:
    """A variables tree as `collection/layer/.../leaf` -> array, for an `.npz` file (no pickle)."""
    flat = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        flat["/".join(str(getattr(part, "key", part)) for part in path)] = np.asarray(leaf)
    return flat


PREDICT_PY = '''"""Predictions of the model exported from a dlc run: the model's code in model.py, its weights in
weights.npz, its input normalization, class labels and CSV encoding in preprocessing.json. No dlc needed.

    python predict.py FILE.csv|FILE.npz     # a CSV with the trained columns, or an NPZ with `x`

prints a CSV row per example: the prediction, then the output for each class (or the values).
"""

import csv
import json
import sys
from pathlib import Path

import jax
import numpy as np
from model import INPUT_DTYPE, INPUT_SHAPE, MODEL, normalized

HERE = Path(__file__).resolve().parent


def load_variables():
    """weights.npz (keys `collection/layer/leaf`) as the nested variables Flax applies."""
    tree = {}
    with np.load(HERE / "weights.npz", allow_pickle=False) as arrays:
        for key in arrays.files:
            *path, leaf = key.split("/")
            node = tree
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = arrays[key]
    return tree


PREPROCESSING = json.loads((HERE / "preprocessing.json").read_text())
VARIABLES = load_variables()


def predict(x):
    """The model's outputs for raw examples x (examples, features), normalized as in training."""
    norm = PREPROCESSING["normalization"]
    x = np.asarray(x)
    x = x if x.dtype == np.float32 else x.astype(np.float64)
    flat = normalized(x, norm["shift"], norm["scale"]) if norm["kind"] != "none" else \\
        x.reshape(len(x), -1).astype(INPUT_DTYPE)
    return np.asarray(jax.jit(MODEL.apply)(VARIABLES, flat.reshape(len(flat), *INPUT_SHAPE)))


def read(path):
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return arrays["x"]
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = [cell.strip() for cell in next(csv.reader(f))]
    if "encoding" in PREPROCESSING:
        return encoded(path, header, PREPROCESSING["encoding"])
    columns = PREPROCESSING.get("columns") or header
    with open(path, newline="", encoding="utf-8-sig") as f:
        next(csv.reader(f))
        return np.loadtxt(f, dtype=np.float32, delimiter=",", ndmin=2, usecols=[header.index(c) for c in columns])


def encoded(path, header, encoding):
    """A CSV's trained columns encoded as in training (model.encode: categories one-hot, text as
    token ids); a missing cell is filled in as in training under `missing=mean`, else an error."""
    import model

    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader)
        rows, lines = [], []
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    cells = []
    for record in encoding:
        if record["column"] not in header:
            raise SystemExit(f"{path.name} has no column `{record['column']}`, which the model was trained on")
        column = np.array([row[header.index(record["column"])].strip() for row in rows], dtype=object)
        gone = model.missing(column)
        if record["kind"] != "text" and PREPROCESSING["missing"] != "mean" and gone.any():
            line = lines[int(np.argmax(gone))]
            raise SystemExit(f"{path.name} row {line}, column `{record['column']}`: the cell is missing; fill it in")
        cells.append(column)
    return model.encode(encoding, cells, np.array(lines))


def main():
    outputs = predict(read(sys.argv[1]))
    labels = PREPROCESSING.get("labels")
    writer = csv.writer(sys.stdout)
    if labels and outputs.shape[-1] == len(labels):
        writer.writerow(["prediction", *(f"p_{label}" for label in labels)])
        writer.writerows([labels[int(np.argmax(row))], *(f"{p:.6g}" for p in row)] for row in outputs)
    else:
        writer.writerows([f"{v:.6g}" for v in row] for row in outputs.reshape(len(outputs), -1))


if __name__ == "__main__":
    main()
'''


def python_folder(session: Session, out: Path) -> list[Path]:
    """`out/` with model.py (the emitted program), weights.npz, preprocessing.json and predict.py.
    Returns the files written."""
    program = session.program
    out.mkdir(parents=True, exist_ok=True)
    prepared = session.prepared
    preprocessing = {"normalization": prepared.normalization, "labels": prepared.labels,
                     "columns": list(prepared.columns)}
    if encodes_cells(program.data):  # the CSV's cells, which model.py's `encode` encodes as dlc does
        encoding = prepared.encoding or identity(prepared.columns)  # a CSV that happened to hold numbers only
        preprocessing |= {"encoding": encoding.to_json(), "missing": program.data.missing}
    files = {
        "model.py": emit_py(program, out / "model.py").encode(),
        "preprocessing.json": (json.dumps(preprocessing, indent=2) + "\n").encode(),
        "predict.py": PREDICT_PY.encode(),
    }
    for name, data in files.items():
        write_atomically(out / name, data)
    np.savez(out / "weights.npz", **flat_variables(_variables(session)))
    return [out / name for name in (*files, "weights.npz")]
