"""`dlc check` answers before JAX exists: checking imports none of the heavy libraries, not even
to read an NPZ file's array headers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("jax", "jaxlib", "numpy", "flax", "optax", "orbax", "sklearn", "matplotlib")
REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from dlc.cli import main
status = main(["check", "-q", *sys.argv[1:]])
print(json.dumps([status, sorted({m.split(".")[0] for m in sys.modules} & set(%r))]))
"""


def test_check_imports_no_heavy_library(data_dir: Path, tmp_path: Path) -> None:
    npz_spec = tmp_path / "npz.dl"
    npz_spec.write_text(f'data "{data_dir / "classes.npz"}" val=0.2\ndense 3 softmax\n'
                        "loss categorical_crossentropy\noptimizer adam\nearly_stop 3\n")
    specs = [str(REPO / "specs" / "cnn.dl"), str(npz_spec)]
    done = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,), *specs],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    status, imported = json.loads(done.stdout.splitlines()[-1])
    assert (status, imported) == (0, []), done.stderr
