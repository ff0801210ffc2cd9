"""`--emit py` trains to `dlc run`'s numbers: the emitted program of every example spec, run where
`import dlc` fails, and of specs generated from every registry entry (each layer, activation,
initializer, loss, metric, optimizer, schedule, dataset and data option), gives the history that
dlc gives for the same spec and seed. Equal within 1e-5 is the promise; today they are equal to
the bit."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from without_dlc import NO_DLC

import dlc
from dlc.compiler import registry as reg
from dlc.compiler.check import check_text
from dlc.compiler.emit_py import emit_py

ROOT = Path(__file__).resolve().parents[2]
# A spec that starts from a trained run (`init`) is refused by `--emit py` (tests/cli/test_cli_emit.py).
EXAMPLES = [path for path in sorted((ROOT / "specs").rglob("*.dl"))
            if not re.search(r"^init\s", path.read_text(encoding="utf-8"), re.MULTILINE)]
EPOCHS = 2
TOLERANCE = 1e-5

# Runs each emitted program given as (file, out folder, epochs) with `dlc` made unimportable.
WITHOUT_DLC = NO_DLC + r"""
import json, runpy
for file, out, epochs in json.loads(sys.argv[1]):
    sys.argv = [file, "--out", out, "--epochs", str(epochs)]
    runpy.run_path(file, run_name="__main__")
"""


def read_history(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if k != "epoch_time"} for row in csv.DictReader(f)]


def dlc_history(program: dlc.Program, epochs: int) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in program.fit(epochs=epochs)]


def assert_same(emitted: list[dict[str, float]], expected: list[dict[str, float]], what: str) -> None:
    assert [list(row) for row in emitted] == [list(row) for row in expected], what
    for got, want in zip(emitted, expected, strict=True):
        for column, value in want.items():
            assert math.isclose(got[column], value, rel_tol=TOLERANCE, abs_tol=TOLERANCE), \
                f"{what}: epoch {want['epoch']:g} `{column}` {got[column]!r} vs dlc's {value!r}"


def test_every_example_spec_trains_to_dlcs_numbers_without_dlc(tmp_path: Path, subtests) -> None:
    """Every spec in specs/ (the CNN, dropout, batchnorm-free and early-stopping ones, every
    optimizer): the digits MLP to its early stop, the others for a few epochs. One process runs
    every emitted program (starting Python, JAX and scikit-learn is most of what one costs), while
    dlc trains the same specs here."""
    assert len(EXAMPLES) > 10, EXAMPLES  # specs/ found
    runs = []
    for spec_file in EXAMPLES:
        program = dlc.load(spec_file)
        epochs = program.ir.epochs if spec_file.name == "mlp.dl" else EPOCHS
        file = tmp_path / f"{spec_file.stem}.py"
        file.write_text(emit_py(program.ir, file))
        runs.append((spec_file, program, file, tmp_path / f"{spec_file.stem}-out", epochs))
    assert len({file for _, _, file, _, _ in runs}) == len(runs), "two example specs share a name"
    with (tmp_path / "stderr.txt").open("w") as stderr:  # a file, not a pipe: nothing blocks while dlc trains
        emitted = subprocess.Popen([sys.executable, "-c", WITHOUT_DLC,
                                    json.dumps([(str(file), str(out), epochs) for _, _, file, out, epochs in runs])],
                                   stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
        try:
            expected = {spec_file: dlc_history(program, epochs) for spec_file, program, _, _, epochs in runs}
            emitted.wait(timeout=600)
        finally:
            emitted.kill()
    assert emitted.returncode == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    for spec_file, _, _, out, epochs in runs:
        with subtests.test(spec=spec_file.stem):
            assert_same(read_history(out / "history.csv"), expected[spec_file], spec_file.stem)
            if spec_file.name == "mlp.dl":
                assert len(expected[spec_file]) < epochs, "the MLP should stop early"


# --- specs generated from the registry --------------------------------------------------------

N = 24
RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(N, 64)).astype(np.float32)
LABELS = {"categorical": (3, np.arange(N) % 3), "binary": (1, np.arange(N) % 2),
          "regression": (1, RNG.normal(size=(N, 1)).astype(np.float32))}
INPUTS = ("64", "8x8", "8x8x1")


def loss_for(task: str) -> reg.Loss:
    return next(loss for loss in reg.LOSSES if loss.task == task)


def spec(*, layers: str, loss: reg.Loss | None = None, data: str = 'data "d.npz" val=0.25',
         extra: str = "optimizer adam", head: str | None = None) -> str:
    loss = loss or loss_for("categorical")
    units, _ = LABELS[loss.task]
    head = head or f"dense {units} {loss.probability or 'linear'}"
    return f"{data}\n{layers}\n{head}\n{loss.example}\n{extra}\nbatch 5\nseed 3\n"


def checks(layers: str) -> bool:
    return check_text(spec(layers=layers, data=""))[0] is not None  # without the data file each test writes


def layer_chains() -> list[str]:
    """Every layer's example in a model: the examples grouped by the first input they take, each
    group laid down in order as a chain, a new chain begun where the next example does not check
    after the last (a global pool, say, ends a sequence)."""
    groups: dict[str, list[str]] = {}
    for layer in reg.LAYERS:
        shape = next((shape for shape in INPUTS if checks(f"input {shape}\n{layer.example}\nflatten")), None)
        if shape is None:
            pytest.fail(f"`{layer.example}` takes none of the inputs {INPUTS}: add one it takes")
        groups.setdefault(shape, []).append(layer.example)
    chains = []
    for shape, examples in groups.items():
        chain: list[str] = []
        for example in examples:
            if chain and not checks("\n".join([f"input {shape}", *chain, example, "flatten"])):
                chains.append("\n".join([f"input {shape}", *chain, "flatten"]))
                chain = []
            chain.append(example)
        chains.append("\n".join([f"input {shape}", *chain, "flatten"]))
    return chains


# Sequence layers as the examples leave them out: the last step only, of one direction and both;
# and on padded token ids, the layers that take the padding mask.
SEQUENCE_MODELS = ("input 8x8\nlstm 6", "input 8x8\nrnn 6 relu return_sequences=true\ngru 6 bidirectional=true",
                   "input 64\nembedding 30 4\nconv1d 4 3 relu padding=same\nlstm 5 return_sequences=true "
                   "bidirectional=true\nglobal_maxpool",
                   "input 64\nembedding 30 4\ngru 5 bidirectional=true",
                   "input 64\nembedding 30 4\nrnn 4 return_sequences=true\nglobal_avgpool")


def token_ids(vocab: int) -> np.ndarray:
    """N sequences of 64 token ids below `vocab`, each padded with 0 after a length of its own."""
    ids = np.random.default_rng(1).integers(1, vocab, size=(N, 64))
    ids[np.arange(64) >= (np.arange(N) * 5 % 64 + 1)[:, None]] = 0
    return ids.astype(np.int32)


def write_npz(folder: Path, text: str, y: np.ndarray) -> None:
    """d.npz for `text`: FEATURES, or token ids it has vectors for where its model takes token ids
    (known from the spec without its data line, as the checker refuses an embedding on floats)."""
    model, _ = check_text(text.split("\n", 1)[1])
    x = token_ids(model.token_vocab) if model is not None and model.token_vocab else FEATURES
    np.savez(folder / "d.npz", x=x, y=y)


def frozen(chain: str) -> str:
    """A chain with every layer that has parameters given `trainable=false` (the head stays trainable)."""
    return "\n".join(f"{line} trainable=false" if (entry := reg.lookup("layer", line.split()[0])) and entry.learns
                     else line for line in chain.splitlines())


def cycled(entries: tuple, n: int) -> list:
    return [entries[i % len(entries)] for i in range(n)]


def cases() -> list:
    """Few models, each holding many entries (compiling, not training, is what a case costs)."""
    out = [pytest.param(spec(layers=chain), "categorical", id=f"layers-{i}") for i, chain in enumerate(layer_chains())]
    out += [pytest.param(spec(layers=frozen(chain), extra="optimizer adamw clip=0.5"), "categorical",
                         id=f"frozen-{i}") for i, chain in enumerate(layer_chains())]
    out += [pytest.param(spec(layers=model), "categorical", id=f"sequence-{i}") for i, model in enumerate(SEQUENCE_MODELS)]
    pairs = zip(reg.ACTIVATIONS, cycled(reg.INITIALIZERS, len(reg.ACTIVATIONS)))
    out.append(pytest.param(spec(layers="\n".join(f"dense 6 {a.name} init={i.name}" for a, i in pairs)),
                            "categorical", id="activations-initializers"))
    count = max(len(reg.LOSSES), len(reg.OPTIMIZERS), len(reg.SCHEDULES))
    for loss, optimizer, schedule in zip(cycled(reg.LOSSES, count), cycled(reg.OPTIMIZERS, count),
                                         cycled(reg.SCHEDULES, count)):
        metrics = " ".join(m.name for m in reg.METRICS if (loss.task != "regression" or not m.needs_classification)
                           and (loss.task == "binary" or not m.needs_binary))
        extra = f"{optimizer.example} clip=1.0\n{schedule.example}\nmetrics {metrics}"
        out.append(pytest.param(spec(layers="dense 6 relu\ndropout 0.2", loss=loss, extra=extra), loss.task,
                                id=f"{loss.name}-{optimizer.name}-{schedule.name}"))
    normalizations = reg.lookup("statement", "data").param("normalize").choices
    stops = ("early_stop 1 monitor=val_accuracy", "early_stop 2 restore_best=false min_delta=0.01", "", "early_stop 1")
    for i, dataset in enumerate(reg.DATASETS):
        data = f"{dataset.example} test=0.2 normalize={normalizations[i % 3]}" + (" shuffle=false" if i % 2 else "")
        out.append(pytest.param(spec(data=data, layers="dense 6 relu", head=f"dense {dataset.classes} softmax",
                                     extra=f"optimizer sgd lr=0.5\nmetrics accuracy\n{stops[i % len(stops)]}"),
                                "categorical", id=f"data-{dataset.name}"))
    out.append(pytest.param(spec(layers="dense 6 relu", data='data "d.csv" target="kind" val=0.2 normalize=minmax',
                                 extra="optimizer adam\nmetrics accuracy"), "categorical", id="csv-class-names"))
    # CSVs whose cells dlc encodes (`encoded_csvs`): categories one-hot with missing cells filled in or their
    # rows dropped, and text as token ids, by word and by character.
    for i, data in enumerate(('data "mixed.csv" target="kind" missing=mean val=0.25 normalize=standard',
                              'data "dropped.csv" target="kind" missing=drop test=0.2 normalize=minmax shuffle=false',
                              'data "mixed.csv" target="kind" missing=mean val=0.2 normalize=none')):
        out.append(pytest.param(spec(layers="dense 6 relu", data=data, extra="optimizer adam\nmetrics accuracy"),
                                "categorical", id=f"csv-encoded-{i}"))
    for tokens, layers in (("word", "embedding 12 4\nlstm 4"), ("char", "embedding 12 3\nglobal_avgpool")):
        data = f'data "texts.csv" target="kind" text="text" tokens={tokens} vocab=12 length=7 val=0.25'
        out.append(pytest.param(spec(layers=layers, data=data, extra="optimizer adam\nmetrics accuracy"),
                                "categorical", id=f"csv-text-{tokens}"))
    out.append(pytest.param(spec(layers="dense 6 relu", data='data "given.npz" normalize=standard',
                                 extra="optimizer adam\nearly_stop 1"), "categorical", id="npz-own-validation"))
    # Class weights with a plateau that lowers the rate; kernel penalties on every layer that takes them.
    for loss in (loss for loss in reg.LOSSES if loss.param("class_weight")):
        text = spec(layers="dense 6 relu", loss=loss,
                    extra="optimizer sgd lr=0.3\nschedule plateau factor=0.5 patience=1 min_delta=1\n"
                          "metrics " + " ".join(m.name for m in reg.METRICS if m.needs_classification
                                                and (loss.task == "binary" or not m.needs_binary)))
        out.append(pytest.param(text.replace(loss.example, f"{loss.example} class_weight=balanced"), loss.task,
                                id=f"weighted-{loss.name}"))
    for i, chain in enumerate(layer_chains()):
        lines = [f"{line} l1=0.001 l2=0.01" if (entry := reg.lookup("layer", line.split()[0])) and entry.param("l1")
                 else line for line in chain.splitlines()]
        if lines != chain.splitlines():
            out.append(pytest.param(spec(layers="\n".join(lines)), "categorical", id=f"penalties-{i}"))
    return out


def run_emitted(file: Path, *args: str) -> None:
    """The emitted program's `main`, in this process (its dataclass needs it in `sys.modules`)."""
    name = f"emitted_{abs(hash(file))}"
    found = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    try:
        found.loader.exec_module(module)
        module.main(list(args))
    finally:
        del sys.modules[name]


WORDS = ("Don't", "STOP", "it\u2019s", "9am!", "'quoted'", "naïve", "x_y", "owl", "owl.", "")


def encoded_csvs(folder: Path) -> None:
    """mixed.csv: numbers, a categorical column and missing cells; dropped.csv: the same with a label
    missing too (`missing=drop`); texts.csv: texts of tricky tokens, one empty. The two are written in file order that a
    held-out part holds a category or token the training part lacks."""
    colours = ("red", "NA", "blue", "green", "red", "?", "teal")
    rows = [f"{FEATURES[i, 0]:.6g},{'' if i % 7 == 3 else f'{FEATURES[i, 1]:.4g}'},{colours[i % 7]},"
            f"{('cat', 'dog', 'owl')[i % 3]}" for i in range(N)]
    rows[-1] = rows[-1].replace("red", "mauve", 1)  # a category seen only outside the training part (shuffle=false)
    (folder / "mixed.csv").write_text("a,b,colour,kind\n" + "\n".join(rows) + "\n", encoding="utf-8")
    rows[5] = rows[5].rsplit(",", 1)[0] + ",NA"  # a missing label, whose row only `missing=drop` keeps out
    (folder / "dropped.csv").write_text("a,b,colour,kind\n" + "\n".join(rows) + "\n", encoding="utf-8")
    texts = [" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 2 + i % 5)) for i in range(N)]
    lines = [f'"{text}",{("cat", "dog", "owl")[i % 3]}' for i, text in enumerate(texts)]
    (folder / "texts.csv").write_text("text,kind\n" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("text", "task"), cases())
def test_every_entry_emits_what_dlc_trains(tmp_path: Path, text: str, task: str) -> None:
    _, y = LABELS[task]
    write_npz(tmp_path, text, y)
    np.savez(tmp_path / "given.npz", x=FEATURES[:16], y=y[:16], x_val=FEATURES[16:], y_val=y[16:])
    names = np.array(["cat", "dog", "owl"])[np.arange(N) % 3]
    rows = [",".join([*(f"{v:.6g}" for v in FEATURES[i, :5]), names[i]]) for i in range(N)]
    (tmp_path / "d.csv").write_text("a,b,c,d,e,kind\n" + "\n".join(rows) + "\n")
    encoded_csvs(tmp_path)
    program = dlc.compile(text, base_dir=tmp_path)
    # A plateau lowers the rate after epoch 2 at the soonest: one epoch more shows the lower rate.
    epochs = EPOCHS + 1 if reg.lookup("schedule", program.ir.schedule.name).on_plateau else EPOCHS
    expected = dlc_history(program, epochs)
    file = tmp_path / "emitted.py"
    file.write_text(emit_py(program.ir, file))
    run_emitted(file, "--out", str(tmp_path / "out"), "--epochs", str(epochs))
    assert_same(read_history(tmp_path / "out" / "history.csv"), expected, text)


RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff (a dev dependency) is not installed")
def test_every_emitted_program_is_as_ruff_formats_and_checks_it(tmp_path: Path) -> None:
    """The emitted file is formatted as the project formats code (long layer lines included) and
    clean under its lint rules."""
    encoded_csvs(tmp_path)
    for i, param in enumerate(cases()):
        text = param.values[0]
        if 'data "d.npz"' not in text and not param.id.startswith(("csv-encoded", "csv-text")):
            continue
        write_npz(tmp_path, text, LABELS["categorical"][1])
        file = tmp_path / f"emitted_{i}.py"
        file.write_text(emit_py(dlc.compile(text, base_dir=tmp_path).ir, file))
    wide = 'data "d.npz"\ninput 8x8x1\nconv2d 64 3 relu padding=same init=glorot_uniform name=a_rather_long_layer_name\n' \
           "flatten\ndense 10 softmax\nloss categorical_crossentropy\noptimizer adam"
    write_npz(tmp_path, wide, LABELS["categorical"][1])
    (tmp_path / "wide.py").write_text(emit_py(dlc.compile(wide, base_dir=tmp_path).ir, tmp_path / "wide.py"))
    for command in ("format", "--check"), ("check",):  # formatted, and clean under the project's rules
        done = subprocess.run([RUFF, *command, "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def emitted_parts(folder: Path, data: str, layers: str = "dense 6 relu") -> dict:
    """The namespace of an emitted program's module level (its model and training left uncalled)."""
    program = dlc.compile(spec(layers=layers, data=data), base_dir=folder)
    file = folder / "emitted.py"
    file.write_text(emit_py(program.ir, file))
    return runpy.run_path(str(file), run_name="emitted")


@pytest.mark.parametrize("tokens", ["word", "char"])
def test_the_emitted_tokenizer_is_dlcs(tmp_path: Path, tokens: str) -> None:
    """The emitted tokens, vocabulary and ids are `runtime.text`'s, on texts of Unicode letters and
    digits, apostrophes (typographic ones too), underscores, punctuation, case and empty texts."""
    from dlc.runtime import text as text_mod

    encoded_csvs(tmp_path)
    emitted = emitted_parts(tmp_path, f'data "texts.csv" target="kind" text="text" tokens={tokens} vocab=9 length=5',
                            "embedding 9 4\nflatten")
    texts = [" ".join(WORDS[i:]) for i in range(len(WORDS))] + ["ÉTÉ 3½ ١٢ don''t x__y", "  "]
    for text in texts:
        assert emitted["tokens"](text) == text_mod.tokens(text, tokens), text
    words = emitted["vocabulary"](texts)
    assert words == text_mod.vocabulary(texts, tokens, 9)
    assert np.array_equal(emitted["token_ids"](texts, words), text_mod.token_ids(texts, tokens, words, 5)[0])


def test_a_missing_cell_under_missing_error_names_its_row_and_column(tmp_path: Path) -> None:
    encoded_csvs(tmp_path)
    emitted = emitted_parts(tmp_path, 'data "mixed.csv" target="kind" val=0.25')
    with pytest.raises(SystemExit, match=r"mixed\.csv row 3, column `colour`: the cell is missing; set `missing=mean`"):
        emitted["prepare_data"](0)
