"""Starting training from a trained run (`init "RUN_DIR"`): the layers the checker matched with the
run's (`init="run"` in the IR) get the parameters and batch statistics of the run's checkpoint; the
others keep their fresh initialization.

The checker matched the layers on the run's spec.dl alone; the checkpoint is read here, once, before
training. A run folder is input from elsewhere, so a spec changed since it was checked, a link, or a
checkpoint whose arrays are not the shapes the spec promised is one `RunFolderError` line, and
nothing is trained."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from dlc.compiler import ir
from dlc.compiler.transfer import RunSpecError, read_run_spec
from dlc.runtime.storage import RunFolderError, refuse_link, restore_checkpoint
from dlc.runtime.train import TrainState


def start_from_run(state: TrainState, program: ir.Program, tx: optax.GradientTransformation
                   ) -> tuple[TrainState, dict | None]:
    """`state` (fresh from `init_state`) with the matched layers' parameters and batch statistics
    replaced by the `init` run's, and the optimizer state made anew for them with `tx` (the optimizer
    of a run is not carried over: its moments belong to another objective, and a frozen layer has
    none). Also the record of where the weights came from, for run.json: the run's folder, the
    sha256 of its spec.dl, and the layers copied. Without `init`: `state` as it is, and None."""
    init = program.init
    if init is None:
        return state, None
    run_dir = Path(init.path)
    try:
        spec = read_run_spec(run_dir / "spec.dl")
    except RunSpecError as e:
        raise RunFolderError(f"cannot start from run `{run_dir}`: {e.problem}") from None
    digest = hashlib.sha256(spec).hexdigest()
    if digest != init.spec_sha256:
        raise RunFolderError(f"cannot start from run `{run_dir}`: its spec.dl changed since the spec was checked; "
                             "check the spec again")
    copied = [leaf.name for leaf in ir.leaves(program.layers) if leaf.init == "run"]
    saved = _restored(run_dir)
    params, stats = dict(state.params), dict(state.batch_stats)
    for name in copied:
        params[name] = _matching(saved["params"], name, state.params[name], run_dir, "parameters")
        if name in stats:
            stats[name] = _matching(saved["batch_stats"], name, stats[name], run_dir, "batch statistics")
    new = dataclasses.replace(state, params=params, batch_stats=stats, opt_state=tx.init(params))
    return new, init_record(program)


def init_record(program: ir.Program) -> dict | None:
    """Where a run's initial weights came from, for its run.json: the `init` run's folder, the sha256
    of its spec.dl (the one checked, and verified by `start_from_run`), and the layers copied. None
    without `init`. A resumed run records the same, from the same checked program."""
    if program.init is None:
        return None
    copied = [leaf.name for leaf in ir.leaves(program.layers) if leaf.init == "run"]
    return {"run": program.init.path, "spec_sha256": program.init.spec_sha256, "layers": copied}


def _restored(run_dir: Path) -> dict:
    """The run's checkpoint as it was saved (params and batch_stats, keyed by layer name)."""
    checkpoint = run_dir / "checkpoint"
    refuse_link(checkpoint, "; replace it with the folder itself")
    if not checkpoint.is_dir():
        raise RunFolderError(f"cannot start from run `{run_dir}`: it has no checkpoint folder")
    try:
        saved = restore_checkpoint(checkpoint, None)
    except Exception as e:  # orbax raises many types for a missing or damaged checkpoint
        raise RunFolderError(f"cannot restore the checkpoint of `{run_dir}`: "
                             f"{(str(e).splitlines() or [type(e).__name__])[0][:200]}") from None
    if not isinstance(saved, dict) or not all(isinstance(saved.get(part), dict) for part in ("params", "batch_stats")):
        raise RunFolderError(f"the checkpoint of `{run_dir}` holds no parameters and batch statistics")
    return saved


def _matching(saved: dict, name: str, fresh: dict, run_dir: Path, what: str) -> dict:
    """The run's arrays of layer `name`, as device arrays, when they have the structure, shapes and
    dtypes of the fresh ones; else the one-line error of a checkpoint that is not its spec's."""
    tree = saved.get(name)
    same = tree is not None and jax.tree.structure(tree) == jax.tree.structure(fresh) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(fresh),
                                                               strict=True))
    if not same:
        raise RunFolderError(f"the checkpoint of `{run_dir}` has no {what} of layer `{name}` with the shapes "
                             "its spec.dl gives")
    return jax.tree.map(jnp.asarray, tree)
