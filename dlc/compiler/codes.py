"""Every diagnostic code, declared once: a title, a long explanation, a failing example and
its fix. `dlc explain CODE` prints an entry, `docs/errors.md` is generated from this list, and
the tests check each failing example gets its code and each fix does not. What a diagnostic of
each code says is in the message table, `messages.py`.

Examples that name data files read them from the folder the tests give (`houses.csv` with
columns `rooms,area,price`, `empty.csv`, `objects.npz` holding an object array), and the runs
that `init` names too: `runs/base` (a run of `data digits`, `input 64`, `dense 10 softmax`: its one
layer `dense_1` is 64x10) and `runs/broken` (a run folder whose spec.dl has an error).
"""

from __future__ import annotations

from dataclasses import dataclass

# The registry imports nothing of dlc, so reading its layers here makes no import cycle.
from dlc.compiler import registry as reg


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    explanation: str
    bad: str | None  # None: the fault cannot be written as text (a file that is not UTF-8)
    good: str
    training: bool = False  # reported only when a program is about to train (`dlc run`, `fit`)


# A classifier of digits that starts from a run, for the examples of the `init` codes.
_INIT = "data digits val=0.2\n{init}\n{layers}\nloss categorical_crossentropy\noptimizer adam"

# A sweep of 256 members times its seeds, for the example of E311.
_SWEEP = ("input 64\ndense [16, 32, 64, 128]\ndropout [0.1, 0.2, 0.3, 0.4]\ndense 1\n"
          "optimizer adam lr=[1e-4, 3e-4, 1e-3, 3e-3] b1=[0.8, 0.9] b2=[0.99, 0.999]\nseed [{seeds}]")

CODES: tuple[Code, ...] = (
    # --- syntax: the parser, recovering at the next statement --------------------------------
    Code("E100", "unexpected character",
         "A spec is made of names, numbers, shapes, strings, `=`, `;`, brackets and comments. Any other "
         "character cannot start a token. The statement around it is skipped; the rest is checked.",
         "dense 64 relu @", "dense 64 relu"),
    Code("E101", "unexpected token",
         "A statement is `keyword positional* option*`, optionally followed by a `{ ... }` block. Values are "
         "separated by spaces; commas only separate the items of a list.",
         "dense 64, relu", "dense 64 relu"),
    Code("E102", "missing value after `=`",
         "An option is `name=value` with the value right after `=`.",
         "optimizer adam lr=", "optimizer adam lr=1e-3"),
    Code("E103", "unclosed block",
         "A `{` opened by `repeat` or `residual` must be closed by `}`. The block is checked as if it were "
         "closed at the end of the file.",
         "input 64\nrepeat 2 { dense 64 relu", "input 64\nrepeat 2 { dense 64 relu }"),
    Code("E104", "unmatched closing bracket",
         "A `]` or `}` closes a list or block that was never opened. It is ignored and the statement is "
         "checked without it.",
         "optimizer adam lr=1e-3 ]", "optimizer adam lr=1e-3"),
    Code("E105", "positional value after an option",
         "Positional values (units, kernel size, activation) come first, then `name=value` options.",
         "input 8x8x1\nconv2d 8 3x3 stride=2 relu", "input 8x8x1\nconv2d 8 3x3 relu stride=2"),
    Code("E106", "unterminated string",
         'A string starts and ends with `"` on the same line. Write `\\"` for a quote inside it.',
         'model "digits', "model digits"),
    Code("E107", "unknown escape in a string",
         'Strings know two escapes, `\\"` and `\\\\`. Windows paths can use `/` instead of `\\`.',
         'data "C:\\data\\houses.csv" target="price"', 'data "houses.csv" target="price"'),
    Code("E108", "space around `=`",
         "Options are written `name=value` with no spaces, so that `lr = 0.1` can never be read as three values.",
         "optimizer adam lr =1e-3", "optimizer adam lr=1e-3"),
    Code("E109", "invalid number",
         "Numbers may use `_` between digits (`60_000`) and must be finite: a number beyond the largest "
         "float, or an integer of thousands of digits, is too large.",
         "batch 1__0", "batch 100"),
    Code("E110", "unclosed list",
         "A list `[a, b, c]` must be closed on the line where it opens.",
         "optimizer adam lr=[1e-3, 1e-2", "optimizer adam lr=1e-3"),
    Code("E111", "file is not UTF-8",
         "Spec files are UTF-8 text. A binary file, or text saved in another encoding, is refused at its "
         "first bad byte.",
         None, "model digits"),
    # --- names -------------------------------------------------------------------------------
    Code("E200", "unknown statement",
         "Statements are the settings `model`, `data`, `input`, `loss`, `optimizer`, `schedule`, `batch`, "
         "`epochs`, `early_stop`, `metrics`, `seed`, and layers (with or without the word `layer`). "
         "The closest known name is suggested.",
         "optimiser adam", "optimizer adam"),
    Code("E201", "unknown layer",
         f"After `layer`, and inside {'/'.join(f'`{e.name}`' for e in reg.LAYERS if e.block)} blocks, only layers "
         f"may appear: {', '.join(f'`{e.name}`' for e in reg.LAYERS)}. The layers after an unknown one are not "
         "blamed for it.",
         "input 64\nlayer dense2 64 relu", "input 64\nlayer dense 64 relu"),
    Code("E202", "unknown option",
         "Each statement, layer, optimizer, loss and schedule takes its own options. An option of another "
         "optimizer (`momentum` on `adam`) says which ones take it.",
         "optimizer adam momentum=0.9", "optimizer sgd momentum=0.9"),
    Code("E203", "unknown name",
         "A name that must come from a list (activation, loss, optimizer, schedule, metric, dataset, "
         "initializer, or a choice like `padding=`) is not on it.",
         "input 64\ndense 64 rleu", "input 64\ndense 64 relu"),
    # --- values ------------------------------------------------------------------------------
    Code("E300", "wrong type of value",
         "Each value has a type: integer, number, boolean, name, string, shape. Numbers are never quoted; "
         "counts are whole numbers.",
         'input 64\ndropout "half"', "input 64\ndropout 0.5"),
    Code("E301", "value out of range",
         "Units, filters, kernel sizes, batch, epochs and patience are positive integers; rates and "
         "fractions are in [0, 1); a learning rate is greater than 0. No count or size may exceed "
         "2147483647 (2^31 - 1): JAX computes with 32-bit integers.",
         "input 64\ndropout 1.5", "input 64\ndropout 0.5"),
    Code("E302", "missing value",
         "A required positional value is missing, like the unit count of `dense`.",
         "input 64\ndense relu", "input 64\ndense 64 relu"),
    Code("E303", "too many positional values",
         "A statement got more positional values than it takes. Each layer is its own statement.",
         "input 64\ndense 64 relu 0.5", "input 64\ndense 64 relu\ndropout 0.5"),
    Code("E304", "setting given twice",
         "Settings such as `optimizer` or `loss` may appear once. The error points at the second one and "
         "notes the first.",
         "optimizer adam lr=1e-3\noptimizer sgd lr=0.1", "optimizer sgd lr=0.1"),
    Code("E305", "option or metric given twice",
         "An option may be given once per statement, and a metric listed once.",
         "input 64\ndense 64 bias=true bias=false", "input 64\ndense 64 bias=false"),
    Code("E306", "empty list",
         "A list where one value is expected asks for a sweep: one member per value, and with several lists, "
         "one per combination. A list with no values would make a sweep of no members, so it is an error. "
         "(Before sweeps were checked, E306 refused every list.)",
         "input 64\ndropout []", "input 64\ndropout [0.1, 0.5]"),
    Code("E307", "block where none is taken, or none where one is needed",
         "`repeat N { ... }` and `residual { ... }` hold a block of layers; no other statement does.",
         "input 64\nrepeat 3", "input 64\nrepeat 3 { dense 64 relu }"),
    Code("E308", "setting inside a block",
         "Blocks hold layers only; settings such as `optimizer` go at the top level.",
         "input 64\nrepeat 2 { dense 64 relu; optimizer adam }",
         "input 64\nrepeat 2 { dense 64 relu }\noptimizer adam"),
    Code("E309", "too many layers",
         "A model may have at most 10,000 layers once `repeat` blocks are expanded, a block counting as one "
         "layer too: ten times the deepest networks in use, and few enough that checking and building the "
         "model stay fast. Nested blocks multiply: `repeat 100 { repeat 100 { dense 64 } }` is 10,101 layers.",
         "input 64\nrepeat 1000 { repeat 1000 { dense 64 relu } }", "input 64\nrepeat 10 { dense 64 relu }"),
    Code("E310", "two layers with one name",
         "A layer's name keys its parameters in checkpoints, so no two layers may share one; the error is "
         "reported at both. A layer without `name=` is named after its kind and its index among the layers "
         "of that kind in the expanded model (blocks count as layers of their kind): `dense_1`, `dropout_1`, "
         "`dense_2`. Inside `repeat N` a `name=` gets `_1` … `_N` appended per copy, the outer block's "
         "number first when blocks nest.",
         "input 64\ndense 64 relu name=hidden\ndense 64 relu name=hidden",
         "input 64\ndense 64 relu name=hidden\ndense 64 relu name=hidden2"),
    Code("E311", "too many sweep members",
         "A sweep has one member per combination of its lists' values: the product of their lengths. "
         "At most 1,024 members are allowed, so that a slip such as ten lists of ten values (ten billion "
         "members) is an error rather than a check that never ends. The error is at the list that takes the "
         "count past the limit, and only the first member is checked besides.",
         _SWEEP.format(seeds="0, 1, 2, 3, 4, 5, 6, 7, 8, 9"), _SWEEP.format(seeds="0, 1")),
    # --- shapes ------------------------------------------------------------------------------
    Code("E400", "layer needs an image",
         "`conv2d`, `maxpool2d` and `avgpool2d` take rank-3 input: height x width x channels. Flat data can "
         "be re-shaped with `input`, like `input 8x8x1` for the 64 features of `digits`.",
         "input 64\nconv2d 8 3x3 relu", "input 8x8x1\nconv2d 8 3x3 relu"),
    Code("E401", "layer needs a flat input",
         "`dense` takes rank-1 input. After convolutions, add `flatten`.",
         "input 8x8x1\nconv2d 4 3x3 relu\ndense 10 softmax", "input 8x8x1\nconv2d 4 3x3 relu\nflatten\ndense 10 softmax"),
    Code("E402", "window larger than its input",
         "A pool or a `padding=valid` convolution may not shrink a side below 1.",
         "input 4x4x1\nmaxpool2d 8", "input 4x4x1\nmaxpool2d 2"),
    Code("E403", "residual block changes the shape",
         "A `residual` block's output is added to its input, so both must have the same shape.",
         "input 32\nresidual { dense 16 relu }", "input 32\nresidual { dense 32 relu }"),
    Code("E404", "input disagrees with the data",
         "`input` may re-shape examples only when the number of values agrees: `digits` has 64 features, "
         "so `input 8x8x1` works and `input 7x7x1` does not.",
         "data digits\ninput 7x7x1", "data digits\ninput 8x8x1"),
    Code("E405", "softmax over one unit",
         "A `softmax` turns the values along the last axis into probabilities that sum to 1. Over one unit "
         "it is always 1, whatever the input: the layers before it get no gradient and the output says "
         "nothing, whatever the loss. For one probability use `sigmoid`; for classes, one unit per class.",
         "input 4\ndense 1 softmax\nloss mse", "input 4\ndense 1 sigmoid\nloss mse"),
    Code("E406", "layer needs a sequence",
         "`rnn`, `lstm`, `gru`, `conv1d`, `maxpool1d` and `avgpool1d` take rank-2 input: steps x features "
         "(the global pools take a sequence or an image). Flat data can be re-shaped with `input`, like "
         "`input 8x8` for the 64 features of `digits`: 8 steps of 8 pixels.",
         "input 64\nlstm 16", "input 8x8\nlstm 16"),
    Code("E407", "token ids and the first layer disagree",
         "Integer token ids (a CSV's `text=` column, read as `length` ids per example) go through `embedding` "
         "first, which gives each id a learned vector; no other layer takes ids. So `embedding` is the first "
         "layer, on input of one id per step, and only there: on data of numbers (a built-in dataset, a CSV's "
         "number columns) it is an error too. An NPZ's `x` of integers may be either; one of floats (in `x`, "
         "`x_val` or `x_test`) holds numbers, an error too, known from the array's header before anything is "
         "loaded (arrays given to `fit` are refused when it gets them).",
         "data digits\nembedding 64 8\nlstm 16\ndense 10 softmax",
         "data digits\ninput 8x8\nlstm 16\ndense 10 softmax"),
    Code("E408", "embedding smaller than the vocabulary",
         "A text column's `vocab=N` gives token ids 0 to N-1 (0 pads, 1 stands for words it has no id for); "
         "`embedding VOCAB DIM` has a vector for ids 0 to VOCAB-1, so VOCAB must be at least N.",
         'data "messages.csv" target="topic" text="text" vocab=300\nembedding 200 8\nglobal_avgpool\n'
         "dense 2 softmax",
         'data "messages.csv" target="topic" text="text" vocab=300\nembedding 300 8\nglobal_avgpool\n'
         "dense 2 softmax"),
    # --- output, loss and data -----------------------------------------------------------------
    Code("E500", "output does not fit the loss",
         "`categorical_crossentropy` needs a flat output with one unit per class; `binary_crossentropy` a "
         "flat output with one unit per label. The error points at the last layer, where the fix goes.",
         "input 8x8x1\nconv2d 4 3x3\nloss categorical_crossentropy",
         "input 8x8x1\nconv2d 4 3x3\nflatten\ndense 10 softmax\nloss categorical_crossentropy"),
    Code("E501", "output units do not match the classes",
         "A classifier's last layer has one unit per class (one unit for two classes with "
         "`binary_crossentropy`).",
         "data iris val=0.2\ndense 10 softmax\nloss categorical_crossentropy",
         "data iris val=0.2\ndense 3 softmax\nloss categorical_crossentropy"),
    Code("E502", "output does not match the target width",
         "A regression's last layer has one unit per target value.",
         'data "houses.csv" target="price"\ndense 3\nloss mse', 'data "houses.csv" target="price"\ndense 1\nloss mse'),
    Code("E503", "loss does not fit the data",
         "Class labels need a classification loss, and a regression target a regression loss; "
         "`binary_crossentropy` is for two classes.",
         "data digits\ndense 1\nloss mse", "data digits\ndense 10 softmax\nloss categorical_crossentropy"),
    Code("E504", "metric needs a classification loss",
         "`accuracy` counts correct classes, so it needs a classification loss.",
         "input 3\ndense 1\nloss mse\nmetrics accuracy", "input 3\ndense 1\nloss mse\nmetrics mae"),
    Code("E505", "monitored quantity is not computed",
         "`early_stop monitor=` may name `loss`, `val_loss`, or a metric listed in `metrics`, with or "
         "without `val_`.",
         "data iris val=0.2\ndense 3 softmax\nloss categorical_crossentropy\nearly_stop 3 monitor=val_accuracy",
         "data iris val=0.2\ndense 3 softmax\nloss categorical_crossentropy\nmetrics accuracy\n"
         "early_stop 3 monitor=val_accuracy"),
    Code("E506", "early stopping needs validation data",
         "`early_stop` watches `val_loss` by default, which needs held-out data: `val=` on `data`, or "
         "`x_val`/`y_val` in an NPZ file. Through the Python API it is checked when `fit` is called.",
         "data digits test=0.2\ndense 10 softmax\nloss categorical_crossentropy\nearly_stop 5",
         "data digits val=0.1 test=0.2\ndense 10 softmax\nloss categorical_crossentropy\nearly_stop 5"),
    Code("E507", "no loss to train with",
         "`dlc run` and `fit` train the model, which needs an objective. A spec without `loss` still checks "
         "(with warning W101), so that fragments can be embedded.",
         "input 4\ndense 1\noptimizer adam", "input 4\ndense 1\nloss mse\noptimizer adam", training=True),
    Code("E508", "no optimizer to train with",
         "`dlc run` and `fit` train the model, which needs an update rule. A spec without `optimizer` still "
         "checks (with warning W102).",
         "input 4\ndense 1\nloss mse", "input 4\ndense 1\nloss mse\noptimizer adam", training=True),
    Code("E509", "metric needs a binary classifier",
         "`auc` ranks the scores of one probability per example against its 0/1 label, so it needs "
         "`binary_crossentropy` on one output unit. For several classes report `precision`, `recall` or `f1` "
         "(macro over the classes).",
         "data iris val=0.2\ndense 3 softmax\nloss categorical_crossentropy\nmetrics auc",
         "data breast_cancer val=0.2\ndense 1 sigmoid\nloss binary_crossentropy\nmetrics auc"),
    Code("E510", "class weights need one class per example",
         "`class_weight=balanced` weighs each training example by its class's frequency, so each example must "
         "have one class: a `categorical_crossentropy` output, or `binary_crossentropy` on one unit, not "
         "several labels at once.",
         "input 4\ndense 3 sigmoid\nloss binary_crossentropy class_weight=balanced",
         "input 4\ndense 1 sigmoid\nloss binary_crossentropy class_weight=balanced"),
    # --- data files --------------------------------------------------------------------------
    Code("E600", "data file not found",
         "A relative path starts at the folder of the spec file (the working directory for a spec given "
         "as text).",
         'data "missing.csv" target="price"', 'data "houses.csv" target="price"'),
    Code("E601", "unsupported data file",
         "Data files are `.csv` (a header row, numeric features, a `target=` column) or `.npz` (arrays `x`, "
         "`y`, optionally `x_val`, `y_val`, `x_test`, `y_test`).",
         'data "houses.xlsx" target="price"', 'data "houses.csv" target="price"'),
    Code("E602", "CSV has no such column",
         "`target=` must name a column of the CSV's header row.",
         'data "houses.csv" target="prize"', 'data "houses.csv" target="price"'),
    Code("E603", "CSV needs a target column",
         "A CSV holds features and labels side by side; `target=` says which column holds the labels.",
         'data "houses.csv"', 'data "houses.csv" target="price"'),
    Code("E604", "NPZ arrays are missing or not numeric",
         "An NPZ source holds numeric arrays `x` and `y` with as many examples each. Object arrays are "
         "refused: loading them would mean unpickling, which can run code.",
         'data "objects.npz"', 'data "houses.csv" target="price"'),
    Code("E605", "held-out fractions leave no training data",
         "`val=` and `test=` are fractions of the examples; together they must stay below 1.",
         "data digits val=0.5 test=0.5", "data digits val=0.1 test=0.2"),
    Code("E606", "data file cannot be read",
         "The file exists but is empty, not UTF-8, not a valid archive, or not a file at all (a folder).",
         'data "empty.csv" target="price"', 'data "houses.csv" target="price"'),
    Code("E607", "text options that do not fit, or token ids normalized",
         "`tokens=`, `vocab=` and `length=` say how `text=\"COLUMN\"` turns a CSV column of text into integer "
         "tokens: without `text=` they mean nothing. The text column and the `target=` column are two columns. "
         "Token ids are indices into the vocabulary, never scaled: `normalize=` is an error on a text column, "
         "and on an NPZ's `x` (or arrays given to `fit`) when the model's first layer, an `embedding`, takes "
         "them as ids.",
         'data "houses.csv" target="price" vocab=500', 'data "houses.csv" target="price"'),
    # --- starting from a trained run -----------------------------------------------------------
    Code("E700", "not a run folder",
         "`init` names a folder that `dlc run SPEC --out DIR` (or `Program.save`) wrote, relative to the spec's "
         "folder: its layers start from that run's trained parameters. The folder must exist and hold the "
         "run's `spec.dl`.",
         _INIT.format(init='init "runs/missing"', layers="dense 10 softmax"),
         _INIT.format(init='init "runs/base"', layers="dense 10 softmax")),
    Code("E701", "the run's model cannot be read",
         "The checker reads the run's `spec.dl` (never its weights) and checks it to learn its layers' names and "
         "shapes. The file must be a plain file (not a symbolic link) of at most 1 MiB of UTF-8 that checks "
         "without errors and gives its input shape; its relative data paths start at the folder the run's "
         "`run.json` records (`spec_dir`), else at the run folder.",
         _INIT.format(init='init "runs/broken"', layers="dense 10 softmax"),
         _INIT.format(init='init "runs/base"', layers="dense 10 softmax")),
    Code("E702", "init copies no layer",
         "A layer starts from the run's parameters when its name (`name=`, or the default `KIND_INDEX`) is the "
         "name of a layer of the run with parameters, and its kind and parameter shapes are the same. An `init` "
         "under which no layer has such a name would train everything from scratch: most likely the layers "
         "were renamed.",
         _INIT.format(init='init "runs/base"', layers="dense 10 softmax name=head"),
         _INIT.format(init='init "runs/base"', layers="dense 10 softmax")),
    Code("E703", "layer's shapes differ from the run's",
         "The run has a layer of this name, but its parameters have other shapes (more units, another kernel, "
         "another input), so they cannot be copied. Give the layer the run's shapes, or another `name=` to "
         "train it from scratch.",
         _INIT.format(init='init "runs/base"', layers="dense 32 relu\ndense 10 softmax name=head"),
         _INIT.format(init='init "runs/base"', layers="dense 10 softmax")),
    Code("E704", "layer left fresh under strict init",
         "`init ... strict=true` asks that every layer with parameters start from the run; this one has no "
         "layer of its name in the run, so it would start from a random initialization.",
         _INIT.format(init='init "runs/base" strict=true', layers="layernorm\ndense 10 softmax"),
         _INIT.format(init='init "runs/base" strict=true', layers="dense 10 softmax")),
    # --- warnings ----------------------------------------------------------------------------
    Code("W100", "input shape unknown",
         "Without `input` or `data`, shapes are checked when `fit` gets its first arrays. Add either to "
         "check them now.",
         "dense 64 relu", "input 64\ndense 64 relu"),
    Code("W101", "no loss",
         "A spec without `loss` can be checked and embedded, but `dlc run` and `fit` need one.",
         "input 4\ndense 1\noptimizer adam", "input 4\ndense 1\nloss mse\noptimizer adam"),
    Code("W102", "no optimizer",
         "A spec without `optimizer` can be checked and embedded, but `dlc run` and `fit` need one.",
         "input 4\ndense 1\nloss mse", "input 4\ndense 1\nloss mse\noptimizer adam"),
    Code("W103", "output activation before a cross-entropy loss",
         "Cross-entropy losses expect a `softmax` (categorical) or `sigmoid` (binary) output, which is fused "
         "into the numerically stable from-logits loss, or a `linear` output of logits. Another activation "
         "is treated as logits, which is rarely what was meant.",
         "data digits val=0.1\ndense 10 relu\nloss categorical_crossentropy",
         "data digits val=0.1\ndense 10 softmax\nloss categorical_crossentropy"),
    Code("W104", "running statistics cannot settle",
         "`batchnorm` keeps running averages of each channel's mean and variance, which evaluation and "
         "prediction use instead of the batch's. Each step keeps `momentum` of the old average: at the "
         "default 0.99 it takes about 459 steps before the starting values weigh under 1%. A run with "
         "fewer steps (epochs times batches per epoch) evaluates with statistics that never settled, and "
         "its validation numbers are worse than the model. Lower `momentum=`, or train for more steps.",
         "data iris val=0.2\ndense 16 relu\nbatchnorm\ndense 3 softmax\nloss categorical_crossentropy\n"
         "optimizer adam\nepochs 20",
         "data iris val=0.2\ndense 16 relu\nbatchnorm momentum=0.9\ndense 3 softmax\n"
         "loss categorical_crossentropy\noptimizer adam\nepochs 20"),
    Code("W105", "nothing to freeze",
         "`trainable=false` freezes a layer's parameters: training never updates them (a frozen `batchnorm` also "
         "keeps its running statistics). A layer without parameters (`dropout`, `flatten`, a pool, `activation`) "
         "has nothing to freeze, so the option does nothing there.",
         "input 64\ndense 64 relu\ndropout 0.5 trainable=false\ndense 10 softmax",
         "input 64\ndense 64 relu trainable=false\ndropout 0.5\ndense 10 softmax"),
)

BY_CODE = {c.code: c for c in CODES}


def explain(code: str) -> str:
    c = BY_CODE[code]
    out = [f"{c.code}: {c.title}", "", c.explanation, ""]
    if c.bad is not None:
        out += ["Fails:", "", *("    " + line for line in c.bad.splitlines()), ""]
    out += ["Fixed:", "", *("    " + line for line in c.good.splitlines())]
    return "\n".join(out) + "\n"


def markdown() -> str:
    """docs/errors.md, generated: `dlc explain --markdown > docs/errors.md`."""
    out = ["# Diagnostics", "", "Generated from `dlc/compiler/codes.py` by `dlc explain --markdown`; "
           "do not edit by hand.", "", "| code | title |", "|---|---|"]
    out += [f"| [{c.code}](#{c.code.lower()}) | {c.title} |" for c in CODES]
    for c in CODES:
        out += ["", f"## {c.code}", "", f"**{c.title}**", "", c.explanation, ""]
        if c.bad is not None:
            out += ["Fails:", "", "```", c.bad, "```", ""]
        out += ["Fixed:", "", "```", c.good, "```"]
    return "\n".join(out) + "\n"
