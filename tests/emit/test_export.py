"""What leaves dlc works without it: the StableHLO of `--emit hlo` parses as MLIR, and a trained run
exported as a `jax.export` artifact or as a Python folder predicts what `dlc predict` does (1e-5),
in a Python where `import dlc` fails."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from without_dlc import NO_DLC

import dlc
from dlc.runtime.export import prediction_artifact, python_folder, stablehlo_text

ROOT = Path(__file__).resolve().parents[2]

PREDICT_FOLDER = NO_DLC + r"""
import runpy
sys.path.insert(0, sys.argv[1])
sys.argv = ["predict.py", sys.argv[2]]
runpy.run_path("predict.py", run_name="__main__")
"""

# A run's artifact called on x.npy (saved to out.npy), then its Python folder's predict.py on x.npz
# (its CSV to predictions.csv), in one process: starting Python and JAX is most of what each costs.
ARTIFACT_THEN_FOLDER = NO_DLC + r"""
import contextlib, os, runpy
import jax, numpy as np
artifact, x_npy, out_npy, folder, x_npz, out_csv = sys.argv[1:]
exported = jax.export.deserialize(bytearray(open(artifact, "rb").read()))
np.save(out_npy, np.asarray(exported.call(np.load(x_npy))))
os.chdir(folder)
sys.path.insert(0, folder)
sys.argv = ["predict.py", x_npz]
with open(out_csv, "w", newline="") as f, contextlib.redirect_stdout(f):
    runpy.run_path("predict.py", run_name="__main__")
"""

SPECS = {
    "cnn": (ROOT / "specs" / "cnn.dl").read_text().replace("epochs 40", "epochs 2"),
    "regression_batchnorm": 'data "{data}/housing.csv" target="price" val=0.2 normalize=standard\n'
                            "dense 8 relu\nbatchnorm\ndense 1\nloss mse\noptimizer adam\nepochs 2\n",
    "tokens": 'data "{folder}/tokens.npz" val=0.2\nembedding 30 4\nconv1d 4 3 relu padding=same\n'
              "lstm 5 bidirectional=true\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\nepochs 2\n",
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def trained(request, tmp_path_factory) -> tuple[dlc.Program, np.ndarray, Path]:
    """A run trained two epochs and loaded back from its folder, and raw features to predict on."""
    folder = tmp_path_factory.mktemp(request.param)
    ids = np.random.default_rng(0).integers(1, 30, size=(60, 12))
    ids[np.arange(12) >= np.arange(60)[:, None] % 12 + 1] = 0  # padded after lengths 1 to 12
    np.savez(folder / "tokens.npz", x=ids, y=ids[:, 0] % 3)
    program = dlc.compile(SPECS[request.param].format(data=ROOT / "data", folder=folder), base_dir=ROOT / "specs")
    program.fit()
    program.save(folder / "run")
    from dlc.runtime.sources import load_source

    x, _, _, _ = load_source(program.ir.data)
    x = np.asarray(x[:40], np.int32 if program.ir.token_vocab else np.float32)  # what the model takes
    np.save(folder / "x.npy", x)
    np.savez(folder / "x.npz", x=x)
    return dlc.load_run(folder / "run"), x, folder


def test_artifact_and_python_folder_predict_as_dlc_without_dlc(trained) -> None:
    """The `jax.export` artifact, then the Python folder, of one trained run (one training, even
    where pytest-xdist would have split two tests of it over two workers)."""
    program, x, folder = trained
    (folder / "model.stablehlo").write_bytes(prediction_artifact(program.trained))
    out = folder / "py"
    written = python_folder(program.trained, out)
    assert sorted(path.name for path in written) == ["model.py", "predict.py", "preprocessing.json", "weights.npz"]
    done = subprocess.run([sys.executable, "-c", ARTIFACT_THEN_FOLDER, str(folder / "model.stablehlo"),
                           str(folder / "x.npy"), str(folder / "out.npy"), str(out), str(folder / "x.npz"),
                           str(folder / "predictions.csv")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = program.predict(x)
    np.testing.assert_allclose(np.load(folder / "out.npy"), expected, rtol=1e-5, atol=1e-5)
    rows = list(csv.reader(io.StringIO((folder / "predictions.csv").read_text())))
    if program.ir.task == "categorical":
        values = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    else:
        values = np.array([[float(v) for v in row] for row in rows])
    np.testing.assert_allclose(values, expected.reshape(len(x), -1), rtol=1e-5, atol=1e-5)


def test_emit_hlo_is_stablehlo_of_prediction_and_an_epoch() -> None:
    from jax._src.interpreters import mlir
    from jax._src.lib.mlir import ir

    text = stablehlo_text(dlc.load(ROOT / "specs" / "cnn.dl").ir)
    modules = [part for part in text.split("\n// ") if "module @" in part]
    assert len(modules) == 2
    with mlir.make_ir_context():
        for module in modules:
            parsed = ir.Module.parse(module[module.index("module @"):])
            assert "stablehlo.convolution" in str(parsed)
    assert "stablehlo.while" in modules[1] or "stablehlo.case" in modules[1]  # the scan over mini-batches


ENCODED = {"categories": 'data "mixed.csv" target="kind" missing=mean val=0.25\ndense 6 relu\n',
           "text": 'data "texts.csv" target="kind" text="text" vocab=12 length=7 val=0.25\nembedding 12 4\nlstm 4\n'}


@pytest.mark.parametrize("kind", sorted(ENCODED))
def test_python_folder_of_an_encoded_csv_predicts_as_dlc_without_dlc(tmp_path: Path, kind: str) -> None:
    """A run on a CSV's cells (categories one-hot and missing cells filled in; text as token ids):
    predict.py encodes a CSV with model.py's `encode` and the run's encoding, as `dlc predict` does."""
    from test_emit_py import encoded_csvs

    from dlc.runtime.commands import predict

    encoded_csvs(tmp_path)
    text = ENCODED[kind] + "dense 3 softmax\nloss categorical_crossentropy\noptimizer adam\nepochs 2\nbatch 8\n"
    program = dlc.compile(text, base_dir=tmp_path)
    program.fit()
    program = dlc.load_run(program.save(tmp_path / "run"))
    python_folder(program.trained, tmp_path / "py")
    data = tmp_path / ("mixed.csv" if kind == "categories" else "texts.csv")
    done = subprocess.run([sys.executable, "-c", PREDICT_FOLDER, str(tmp_path / "py"), str(data)],
                          cwd=tmp_path / "py", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, expected = list(csv.reader(io.StringIO(done.stdout))), predict(program.trained, str(data), None)
    assert [row[0] for row in rows] == [row[0] for row in expected]
    np.testing.assert_allclose(np.array([row[1:] for row in rows[1:]], float),
                               np.array([row[1:] for row in expected[1:]], float), rtol=1e-5, atol=1e-5)
