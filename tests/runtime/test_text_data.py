"""Text data (LANGUAGE.md v2, Text data): a CSV's `text=` column as integer token ids. The tokenizer,
the vocabulary built on the training split, the ids cut and padded, what the checker records, its
errors, and the round trip: train, save, reload the run, predict on a new CSV of text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dlc
from dlc.compiler.check import check_text
from dlc.compiler.summary import summary
from dlc.runtime import commands
from dlc.runtime.text import token_ids, tokens, vocabulary

MESSAGES = """id,text,topic
1,"The meeting moved to Thursday at noon",work
2,"dinner at eight? bring the salad",home
3,"quarterly figures are due friday",work
4,"Don't forget the kids' lunch",home
5,"board meeting friday, figures due",work
6,"salad and dinner with the kids",home
7,"noon deadline for the report",work
8,"bring milk home tonight",home
9,"the report is due at noon",work
10,"kids and dinner at home",home
"""
SPEC = """data "messages.csv" target="topic" text="text" {options}val=0.2
embedding 40 4
global_avgpool
dense 2 softmax
loss categorical_crossentropy
optimizer adam lr=1e-2
epochs 2
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def spec(folder: Path, options: str = "vocab=40 length=6 ") -> Path:
    write(folder, "messages.csv", MESSAGES)
    return write(folder, "text.dl", SPEC.format(options=options))


# --- tokens and ids ---------------------------------------------------------------------------


def test_words_are_lowercased_runs_of_letters_digits_and_inner_apostrophes():
    assert tokens("Don't STOP, it\u2019s 9am! 'quoted' ___ café", "word") == \
        ["don't", "stop", "it's", "9am", "quoted", "café"]
    assert tokens("Hi, yo", "char") == ["h", "i", ",", " ", "y", "o"]


def test_the_vocabulary_is_the_most_frequent_tokens_ties_by_text_capped():
    texts = ["b a c", "a b", "a d"]
    assert vocabulary(texts, "word", 10) == ["a", "b", "c", "d"]
    assert vocabulary(texts, "word", 4) == ["a", "b"]  # vocab counts the two reserved ids


def test_ids_are_cut_and_padded_at_the_end_and_unknown_tokens_are_one():
    ids, unknown = token_ids(["a b zz a", "b", ""], "word", ["a", "b"], 3)
    assert ids.dtype == np.int32 and ids.tolist() == [[2, 3, 1], [3, 0, 0], [0, 0, 0]] and unknown == 1


# --- the checker ------------------------------------------------------------------------------


def test_the_ir_records_token_data(tmp_path):
    program, diagnostics = check_text(SPEC.format(options="vocab=40 length=6 "), "t.dl", spec(tmp_path).parent)
    assert program is not None, diagnostics
    d = program.data
    assert (d.tokens, d.vocab, d.features, d.text, d.tokenize) == (True, 40, (6,), "text", "word")
    assert program.input_shape == (6,)
    assert 'text="text": word tokens, vocab=40 (0 padding, 1 unknown), length=6' in summary(program)
    defaults, _ = check_text(SPEC.format(options="").replace("embedding 40", "embedding 10000"), "t.dl", tmp_path)
    assert (defaults.data.vocab, defaults.data.features) == (10000, (100,))


@pytest.mark.parametrize(("data", "code", "at"), [
    ('data "messages.csv" target="topic" text="body"', "E602", '"body"'),
    ('data "messages.csv" target="topic" text="topic"', "E607", '"topic"'),
    ('data "messages.csv" target="topic" vocab=100', "E607", "vocab"),
    ('data "messages.csv" target="topic" text="text" tokens=bytes', "E203", "bytes"),
    ('data "messages.csv" target="topic" text="text" vocab=2', "E301", "2"),
    ("data iris text=\"text\"", "E202", "text"),
    ("data iris missing=mean", "E202", "missing"),
], ids=["no such column", "the target", "vocab without text", "tokens", "vocab too small", "builtin", "missing"])
def test_text_options_are_checked_where_they_are_written(tmp_path, data, code, at):
    spec(tmp_path)
    _, diagnostics = check_text(f"{data}\nembedding 300 4\nglobal_avgpool\ndense 2 softmax", "t.dl", tmp_path)
    errors = [d for d in diagnostics if d.is_error]
    assert [d.code for d in errors] == [code]
    line = data
    assert line[errors[0].span.col - 1:].startswith(at)


def test_text_on_an_npz_is_an_error_at_the_option(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones((2, 3)), y=np.zeros(2))
    _, diagnostics = check_text('data "a.npz" text="text"\ndense 1', "t.dl", tmp_path)
    assert [(d.code, d.message) for d in diagnostics if d.is_error] == [("E202", "an NPZ source has no option `text`")]


# --- the round trip ---------------------------------------------------------------------------


def test_train_save_reload_and_predict_on_new_text(tmp_path):
    program = dlc.load(spec(tmp_path))
    program.fit()
    session = program.trained
    assert session.prepared.train.x.dtype == np.int32 and session.prepared.train.x.shape[1:] == (6,)
    words = session.prepared.encoding.columns[0]["vocab"]
    assert len(words) <= 38 and "the" in words and "lunch" not in words[:3]
    run = program.save(tmp_path / "run")
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["columns"] == ["text"] and pre["encoding"][0]["vocab"] == words
    assert pre["normalization"]["kind"] == "none"
    new = write(tmp_path, "new.csv", 'text\n"the meeting at noon"\n"dinner with the kids tonight, unheard-of"\n')
    before = commands.predict(session, str(new), None)
    reloaded = dlc.load_run(run).trained
    assert commands.predict(reloaded, str(new), None) == before
    assert before[0][0] == "prediction" and len(before) == 3


def test_evaluation_reads_the_text_column_by_name(tmp_path):
    program = dlc.load(spec(tmp_path))
    program.fit()
    run = program.save(tmp_path / "run")
    session = dlc.load_run(run).trained
    shuffled = write(tmp_path, "shuffled.csv", 'topic,other,text\nwork,1,"noon report due"\nhome,2,"dinner at home"\n')
    metrics = commands.evaluate(session, str(run), str(shuffled), None).metrics["shuffled.csv"]
    assert np.isfinite(metrics["loss"])
    digits_only = write(tmp_path, "digits.csv", "text\n123\n")  # text that NumPy alone would read as a number
    assert len(commands.predict(session, str(digits_only), None)) == 2


def test_token_ids_are_never_normalized(tmp_path):
    spec(tmp_path)
    text = SPEC.format(options="vocab=40 length=6 normalize=standard ")
    _, diagnostics = check_text(text, "t.dl", tmp_path)
    assert [(d.code, d.span.line) for d in diagnostics if d.is_error] == [("E607", 1)]
    assert "cannot scale the token ids of the text column `text`" in diagnostics[0].message


def test_a_saved_vocabulary_larger_than_the_embedding_is_refused(tmp_path):
    from dlc.runtime.storage import RunFolderError

    program = dlc.load(spec(tmp_path))
    program.fit()
    run = program.save(tmp_path / "run")
    pre = json.loads((run / "preprocessing.json").read_text())
    pre["encoding"][0]["vocab"] = [f"w{i}" for i in range(39)]  # ids up to 40: the embedding has 40
    (run / "preprocessing.json").write_text(json.dumps(pre))
    with pytest.raises(RunFolderError, match=r"encoding\[0\]\.vocab` must be at most 38 tokens"):
        dlc.load_run(run)
