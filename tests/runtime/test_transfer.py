"""`runtime.transfer.start_from_run`: the layers the checker matched get the run's parameters and batch
statistics bit for bit, the others keep their fresh initialization, the optimizer state is made anew,
and a run whose spec changed since checking, or whose checkpoint is not its spec's, is refused."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import dlc
from dlc.runtime.storage import RunFolderError
from dlc.runtime.train import init_state, make_trainer
from dlc.runtime.transfer import start_from_run

RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(24, 4)).astype(np.float32), np.arange(24) % 3
RUN = "input 4\ndense 8 relu\nbatchnorm momentum=0.5\ndense 3 softmax\nloss categorical_crossentropy\noptimizer adam\n"
# dense_1 and batchnorm_1 match the run's; the head is new.
NEW = ('input 4\ninit "run"\ndense 8 relu trainable=false\nbatchnorm momentum=0.5\ndense 3 softmax name=head\n'
       "loss categorical_crossentropy\noptimizer adam\nseed 7\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("transfer")
    program = dlc.compile(RUN)
    program.fit(X, Y, epochs=2)
    program.save(folder / "run")
    return folder


def started(folder: Path):
    program = dlc.compile(NEW, base_dir=folder)
    trainer = make_trainer(program.ir, len(X), 1)
    fresh = init_state(trainer, program.ir.input_shape, program.ir.seed)
    return program, trainer, fresh, start_from_run(fresh, trainer.program, trainer.tx)


def equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))


def test_exactly_the_matching_layers_are_copied(run: Path) -> None:
    saved = dlc.load_run(run / "run").variables
    program, trainer, fresh, (state, record) = started(run)
    assert [layer.init for layer in program.ir.layers] == ["run", "run", "fresh"]
    for name in ("dense_1", "batchnorm_1"):
        assert equal(state.params[name], saved["params"][name])
    assert equal(state.batch_stats["batchnorm_1"], saved["batch_stats"]["batchnorm_1"])
    assert equal(state.params["head"], fresh.params["head"]) and not equal(state.params["dense_1"],
                                                                            fresh.params["dense_1"])
    assert equal(state.opt_state, trainer.tx.init(state.params))
    assert record == {"run": str((run / "run").resolve()), "spec_sha256": program.ir.init.spec_sha256,
                      "layers": ["dense_1", "batchnorm_1"]}


def test_training_from_the_run_keeps_the_frozen_layer_as_the_run_left_it(run: Path) -> None:
    _, trainer, _, (state, _) = started(run)
    saved = dlc.load_run(run / "run").variables
    trained, _ = trainer._train_epoch(state, *trainer.place((X, Y)), jax.random.key(0), 0)
    assert equal(trained.params["dense_1"], saved["params"]["dense_1"])
    assert not equal(trained.params["head"], state.params["head"])


def test_a_program_without_init_is_left_as_it_is() -> None:
    program = dlc.compile(RUN)
    trainer = make_trainer(program.ir, len(X), 1)
    fresh = init_state(trainer, program.ir.input_shape, program.ir.seed)
    assert start_from_run(fresh, trainer.program, trainer.tx) == (fresh, None)


def test_a_spec_changed_since_checking_is_refused(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for part in ("spec.dl", "run.json", "preprocessing.json"):
        (copy / part).write_bytes((run / "run" / part).read_bytes())
    (copy / "checkpoint").symlink_to(run / "run" / "checkpoint")
    program = dlc.compile(NEW, base_dir=tmp_path)
    trainer = make_trainer(program.ir, len(X), 1)
    fresh = init_state(trainer, program.ir.input_shape, program.ir.seed)
    with pytest.raises(RunFolderError, match="symbolic link"):
        start_from_run(fresh, trainer.program, trainer.tx)
    (copy / "spec.dl").write_text(RUN + "# edited\n")
    with pytest.raises(RunFolderError, match="changed since the spec was checked"):
        start_from_run(fresh, trainer.program, trainer.tx)


def test_a_checkpoint_that_is_not_its_specs_is_refused(run: Path, tmp_path: Path) -> None:
    """A run folder whose spec.dl was edited to promise other shapes than its checkpoint holds."""
    other = dlc.compile(RUN.replace("dense 8 relu", "dense 5 relu"))
    other.fit(X, Y, epochs=1)
    other.save(tmp_path / "run")
    (tmp_path / "run" / "spec.dl").write_text(RUN)
    program = dlc.compile(NEW, base_dir=tmp_path)
    trainer = make_trainer(program.ir, len(X), 1)
    fresh = init_state(trainer, program.ir.input_shape, program.ir.seed)
    with pytest.raises(RunFolderError, match="no parameters of layer `dense_1` with the shapes"):
        start_from_run(fresh, trainer.program, trainer.tx)


def test_a_run_started_from_another_records_it_and_outlives_it(run: Path, tmp_path: Path) -> None:
    """Through `fit`: the frozen layer stays the run's, run.json says where the weights came from,
    and the new run reloads, evaluates and predicts once the run it started from is gone."""
    import json
    import shutil

    base = tmp_path / "base"
    shutil.copytree(run, base)
    program = dlc.compile(NEW, base_dir=base)
    program.fit(X, Y, epochs=2)
    saved = dlc.load_run(base / "run").variables
    assert equal(program.variables["params"]["dense_1"], saved["params"]["dense_1"])
    program.save(tmp_path / "new")
    record = json.loads((tmp_path / "new" / "run.json").read_text())["init"]
    assert record["run"] == str((base / "run").resolve()) and record["layers"] == ["dense_1", "batchnorm_1"]
    expected = program.predict(X)
    shutil.rmtree(base)
    reloaded = dlc.load_run(tmp_path / "new")
    np.testing.assert_array_equal(reloaded.predict(X), expected)
    assert np.isfinite(reloaded.evaluate(X, Y)["loss"])
