"""Built-in datasets, the options of `data`, and the statements that may appear once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlc.compiler.registry.base import FRACTION, NON_NEGATIVE, POSITIVE, Entry, Param, Range, Shape, option, positional
from dlc.compiler.registry.optimizers import OPTIMIZER_COMMON


@dataclass(frozen=True)
class Dataset(Entry):
    """A built-in dataset's static facts, so that checking never loads it. `load(sklearn.datasets)`
    reads the copy shipped in scikit-learn's wheel (never a download) as `(x, y)`; `file` names that
    copy (rows of features then the class; `header`: a first line of counts and names), which the
    runtime reads directly when it matches these facts, sparing the second it takes to import
    scikit-learn. `loader` is the function of `sklearn.datasets` that `--emit py` calls."""

    features: Shape = ()
    classes: int = 0
    examples: int = 0
    load: Callable[[Any], tuple] | None = None
    loader: str = ""
    file: str = ""
    header: bool = True


DATASETS: tuple[Dataset, ...] = (
    Dataset("digits", "8x8 images of handwritten digits, 10 classes (scikit-learn)", example="data digits val=0.1",
            features=(64,), classes=10, examples=1797, load=lambda sk: sk.load_digits(return_X_y=True), loader="load_digits",
            file="digits.csv.gz", header=False),
    Dataset("iris", "iris flower measurements, 3 species", example="data iris val=0.2",
            features=(4,), classes=3, examples=150, load=lambda sk: sk.load_iris(return_X_y=True), file="iris.csv",
            loader="load_iris"),
    Dataset("wine", "chemical analysis of wines, 3 cultivars", example="data wine val=0.2",
            features=(13,), classes=3, examples=178, load=lambda sk: sk.load_wine(return_X_y=True), file="wine_data.csv",
            loader="load_wine"),
    Dataset("breast_cancer", "breast mass measurements, malignant or benign", example="data breast_cancer val=0.2",
            features=(30,), classes=2, examples=569,
            load=lambda sk: sk.load_breast_cancer(return_X_y=True), file="breast_cancer.csv",
            loader="load_breast_cancer"),
)

DATA_OPTIONS: tuple[Param, ...] = (
    option("val", "float", "fraction held out for validation", 0.0, range=FRACTION,
           synonyms=("validation", "validation_split", "val_split")),
    option("test", "float", "fraction held out for the final test", 0.0, range=FRACTION,
           synonyms=("test_split", "test_size")),
    option("normalize", "choice", "feature scaling fitted on the training part (never of token ids)", "none",
           choices=("standard", "minmax", "none"), synonyms=("normalise", "scale", "scaling")),
    option("shuffle", "bool", "shuffle the examples before splitting and every epoch", True),
    option("target", "string", "the label column of a CSV file", None, synonyms=("label", "y", "labels")),
    option("missing", "choice", "what a missing CSV cell (empty, `NA`, `N/A`, `NaN`, `nan`, `null`, `?`) becomes: "
           "an error, the training mean (a categorical column: its most frequent category), or its row dropped",
           "error", choices=("error", "mean", "drop"), synonyms=("na", "nan", "impute", "fillna")),
    option("text", "string", "a CSV column of text, read as integer tokens (the other feature columns are unused)",
           None, synonyms=("text_column",)),
    option("tokens", "choice", "how text splits into tokens: lowercased words (letters, digits, apostrophes), "
           "or characters", "word", choices=("word", "char"), synonyms=("tokenize", "tokenizer")),
    option("vocab", "int", "token ids per text column, counting 0 = padding and 1 = unknown; the most frequent "
           "training tokens get the others", 10000, range=Range(lo=3), synonyms=("vocab_size", "num_words")),
    option("length", "int", "tokens per text: longer texts are cut, shorter ones padded with 0 at the end", 100,
           range=POSITIVE, synonyms=("maxlen", "max_length", "sequence_length")),
)

# The `data` options that only a CSV source takes, and those that only a `text=` column gives meaning to.
CSV_OPTIONS = ("target", "missing", "text", "tokens", "vocab", "length")
TEXT_OPTIONS = ("tokens", "vocab", "length")

# --- statements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting(Entry):
    """A statement that may appear once. `selects` names the table its first positional picks
    an entry from; that entry's parameters become options of the statement."""

    selects: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("model", "the model's name", (positional("name", "name", "the model's name"),), example="model digits_mlp"),
    Setting("data", "where examples come from", (positional("source", "source", "a built-in dataset or a file"),)
            + DATA_OPTIONS, example="data digits val=0.1 test=0.2"),
    Setting("input", "shape of one example", (positional("shape", "shape", "shape of one example",
                                                         range=POSITIVE),), example="input 8x8x1"),
    Setting("loss", "the training objective", (positional("name", "ref", "the loss", table="loss"),),
            example="loss categorical_crossentropy", selects="loss"),
    Setting("optimizer", "the update rule", (positional("name", "ref", "the optimizer", table="optimizer"),)
            + OPTIMIZER_COMMON, example="optimizer adam lr=1e-3", selects="optimizer"),
    Setting("schedule", "learning-rate schedule", (positional("name", "ref", "the schedule", table="schedule"),),
            example="schedule cosine", selects="schedule"),
    Setting("batch", "mini-batch size", (positional("size", "int", "examples per step", 32, range=POSITIVE),),
            example="batch 32"),
    Setting("epochs", "upper bound on epochs", (positional("count", "int", "epochs", 10, range=POSITIVE),),
            example="epochs 100"),
    Setting("early_stop", "stop when the monitored quantity stops improving",
            (positional("patience", "int", "epochs without improvement before stopping", range=POSITIVE),
             option("monitor", "name", "`loss`, `val_loss`, or a metric, with or without `val_`", "val_loss"),
             option("min_delta", "float", "smallest change that counts as improvement", 0.0, range=NON_NEGATIVE),
             option("restore_best", "bool", "end with the best epoch's weights", True,
                    synonyms=("restore_best_weights",))),
            example="early_stop 5 monitor=val_accuracy"),
    Setting("metrics", "metrics reported besides the loss",
            (positional("names", "ref", "metric names", table="metric", variadic=True),), example="metrics accuracy"),
    Setting("init", "start from a trained run: each layer with the name and parameter shapes of one of the run's "
            "layers gets its trained parameters (and batch statistics); the others start fresh",
            (positional("run", "string", "the folder `dlc run` wrote, relative to the spec's folder"),
             option("strict", "bool", "a layer with parameters left fresh is an error", False)),
            example='init "runs/base"'),
    Setting("seed", "all randomness: init, shuffling, dropout, splits",
            (positional("value", "int", "the seed", 0, range=Range(lo=0, hi=2**32 - 1), shape_free=True),), example="seed 0"),
)
