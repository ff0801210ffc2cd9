"""What makes a run the same run (standard library only: the CLI asks before JAX is imported):
the spec's hash, and what a resumed run may not change."""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path


def spec_sha256(source: str) -> str:
    """The hash of a spec's text, as run.json and every checkpoint record it."""
    return hashlib.sha256(source.encode()).hexdigest()


def run_identity(source: str, seed: int, epochs: int) -> dict:
    """What must match to resume a run: its spec (by hash), its seed and its number of epochs."""
    return {"spec_sha256": spec_sha256(source), "seed": seed, "epochs": epochs}


def resume_changes(started: dict, now: dict) -> list[str]:
    """What differs between a run as it started (`started`, a checkpoint's record) and as it is
    asked to continue (`now`: `run_identity`, or the part of it known), in words: `the spec`,
    `epochs (3 -> 5)`; empty when it may be resumed."""
    return ["the spec" if key == "spec_sha256" else f"{key} ({started.get(key)} -> {now[key]})"
            for key in now if started.get(key) != now[key]]


def train_on_hint(run_dir: str | os.PathLike, spec: str) -> str:
    """What to do instead of resuming a run with other epochs (or another spec or seed), in words:
    `--resume` only finishes a run as it started; training on is a new run that starts from its
    weights. `spec` is the spec as the command line named it (`-`: stdin), and the `init` path
    shown is relative to its folder, where `init` starts a relative path."""
    folder = "." if spec == "-" else os.path.dirname(spec) or "."
    try:
        path = run_dir if os.path.isabs(run_dir) else os.path.relpath(run_dir, folder)
    except ValueError:  # another drive (Windows): only an absolute path reaches it
        path = os.path.abspath(run_dir)
    string = Path(path).as_posix().replace("\\", "\\\\").replace('"', '\\"')  # a string as specs write one
    command = f"dlc run {'SPEC' if spec == '-' else shlex.quote(spec)} --out NEW"
    return (f"--resume only finishes a run as it started (spec, seed, epochs); to train it further, start a new "
            f'run from it: add `init "{string}"` to the spec and `{command}`')
