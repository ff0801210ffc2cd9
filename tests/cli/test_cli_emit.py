"""`dlc compile --emit py|hlo` and `dlc export`, as a user types them: what each writes, and a
clear line (never a traceback) for what cannot be emitted. What the outputs compute is held by
tests/emit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dlc

ROOT = Path(__file__).resolve().parents[2]
IRIS = (ROOT / "specs" / "iris.dl").read_text().replace("epochs 200", "epochs 2")


def dlc_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlc.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_emit_py_writes_a_program_that_names_its_layers(tmp_path: Path) -> None:
    out = tmp_path / "mlp.py"
    done = dlc_cli("compile", str(ROOT / "specs" / "mlp.dl"), "--emit", "py", "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert 'name="dense_1"' in text and 'name="dropout_2"' in text and "import dlc" not in text
    compile(text, str(out), "exec")  # valid Python


def test_emit_hlo_prints_two_stablehlo_modules() -> None:
    done = dlc_cli("compile", str(ROOT / "specs" / "iris.dl"), "--emit", "hlo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("module @") == 2 and "stablehlo.dot_general" in done.stdout


@pytest.mark.parametrize("emit", ["py", "hlo"])
def test_emitting_a_program_without_a_loss_is_the_checkers_error(tmp_path: Path, emit: str) -> None:
    (tmp_path / "s.dl").write_text("data iris\ndense 3 softmax\n")
    done = dlc_cli("compile", "s.dl", "--emit", emit, cwd=tmp_path)
    assert done.returncode == 1 and "error[E507]" in done.stderr and "Traceback" not in done.stderr


def test_emit_py_without_data_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "s.dl").write_text("input 4\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n")
    done = dlc_cli("compile", "s.dl", "--emit", "py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("dlc: error: s.dl has no `data` statement"), done.stderr


def test_emit_py_of_a_spec_that_starts_from_a_run_is_refused(tmp_path: Path, run_dir: Path) -> None:
    """The emitted program could only train from scratch: refused, not silently different."""
    (tmp_path / "s.dl").write_text(IRIS.replace("\n", f'\ninit "{run_dir}"\n', 1))
    done = dlc_cli("compile", "s.dl", "--emit", "py", cwd=tmp_path)
    assert done.returncode == 1 and "starts from a trained run (`init`)" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run") / "iris"
    program = dlc.compile(IRIS)
    program.fit()
    program.save(folder)
    return folder


def test_export_stablehlo_writes_an_artifact(run_dir: Path, tmp_path: Path) -> None:
    import jax

    done = dlc_cli("export", str(run_dir), "-o", str(tmp_path / "iris.stablehlo"))
    assert done.returncode == 0, done.stderr
    exported = jax.export.deserialize(bytearray((tmp_path / "iris.stablehlo").read_bytes()))
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(np.asarray(exported.call(x)), dlc.load_run(run_dir).predict(x), rtol=1e-5, atol=1e-6)


def test_export_py_refuses_a_folder_in_use(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    done = dlc_cli("export", str(run_dir), "--format", "py", "-o", str(tmp_path / "busy"))
    assert done.returncode == 2 and "already exists and is not an empty folder" in done.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    done = dlc_cli("export", str(run_dir), "--format", "py", "-o", str(tmp_path / "fresh"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == [
        "model.py", "predict.py", "preprocessing.json", "weights.npz"]


def test_export_of_no_run_is_one_line(tmp_path: Path) -> None:
    done = dlc_cli("export", str(tmp_path / "nothing"), "-o", str(tmp_path / "x"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
