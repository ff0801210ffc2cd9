"""Every diagnostic's words, declared once with its code: the message table (as mypy's
`message_registry`), in the order of `codes.py`.

A `Message` is a code with a message and a hint, both `str.format` templates (a literal brace is
written twice). A call site picks the message, computes the values (a shape shown, a list of names)
and gives them by name; the template words and formats them, and `at` makes the diagnostic. No
other module names a code or words a diagnostic, but for the registry's shape rules, which word
theirs (`ShapeError`) for now. The plain templates that follow a message are the hints a call site
chooses among for it, the words of its labels, and the pieces its values are worded with. A base
module, like `diagnostics.py`: the parser's messages live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dlc.compiler.diagnostics import Diagnostic, Label
from dlc.grammar import nodes as n


@dataclass(frozen=True)
class Message:
    """A diagnostic's code, message and hint. A `W` code is a warning, any other an error."""

    code: str
    text: str
    hint: str | None = None

    def at(self, span: n.Span, /, *, hint: str | None = None, labels: tuple[Label, ...] = (),
           **values: object) -> Diagnostic:
        """The diagnostic at `span`. A `hint` the call site worded (a did-you-mean, or one of the hints
        below the message) takes the place of the declared one. `{code}` in a template is the code."""
        severity = "warning" if self.code.startswith("W") else "error"
        if not hint and self.hint:
            hint = self.hint.format(code=self.code, **values)
        return Diagnostic(self.code, severity, span, self.text.format(code=self.code, **values), hint, labels)


@dataclass(frozen=True)
class Count:
    """A number with its noun, `1 step` or `12 steps`; `none` words zero where it reads differently."""

    one: str
    many: str
    none: str | None = None

    def of(self, number: int) -> str:
        if number == 0 and self.none is not None:
            return self.none
        return self.one if number == 1 else self.many.format(number)


def quoted(names: Iterable[str]) -> str:
    """`a`, `b`, `c`"""
    return ", ".join(f"`{name}`" for name in names)


def one_of(names: Sequence[str]) -> str:
    """`a`, `b` or `c`"""
    return _joined(names, "or")


def all_of(names: Sequence[str]) -> str:
    """`a`, `b` and `c`"""
    return _joined(names, "and")


def _joined(names: Sequence[str], last: str) -> str:
    words = [f"`{name}`" for name in names]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def options(names: Iterable[str]) -> str:
    """The options a statement takes, as its hints list them."""
    return ", ".join(f"`{name}=`" for name in names) or "no options"


def abridged(text: str, keep: int = 40) -> str:
    """Source text for a message, its middle left out when it is long (a megabyte-long number)."""
    return text if len(text) <= keep else f"{text[:keep - 10]}...{text[-7:]}"


def code_point(c: str) -> str:
    """An invisible character as the user can look it up: `U+00A0`."""
    return f"U+{ord(c):04X}"


# How a message names a token that has no text of its own.
_TOKEN_WORDS = {"_NL": "end of line", "$END": "end of file"}


def token(kind: str, text: str) -> str:
    """A token as a syntax error names it: its text, or what it is (`end of line`)."""
    return _TOKEN_WORDS.get(kind) or f"`{text}`"


# --- syntax ----------------------------------------------------------------------------------

CONTROL_CHARACTER = Message("E100", "unexpected control character `{char}`", "remove it: a spec is plain text")
UNEXPECTED_CHARACTER = Message("E100", "unexpected character `{char}`",
                               "names are letters, digits and `_`; strings go in double quotes")

UNEXPECTED_TOKEN = Message("E101", "unexpected {token}",
                           "a statement is `keyword positional* option*`, like `dense 64 relu` or "
                           "`optimizer adam lr=1e-3`")
UNEXPECTED_IN_LIST = Message("E101", "unexpected {token} in a list", "separate list items with `,`")
COMMA_OUTSIDE_LIST = Message("E101", "unexpected `,` outside a list",
                             "separate values with spaces; commas only separate the items of a `[...]` list")
OPTION_IN_LIST = Message("E101", "an option cannot go inside a list", "a list holds values only, like `[16, 32]`")
LIST_IN_LIST = Message("E101", "a list cannot hold another list", "a sweep axis is one flat list, like `[1e-3, 1e-2]`")
LAYER_WITHOUT_KIND = Message("E101", "`layer` must be followed by a layer name",
                             "write `layer dense 64 relu`, or just `dense 64 relu`")
NESTED_TOO_DEEP = Message("E101", "blocks nest more than {depth} deep",
                          "repeat a block with `repeat N {{ ... }}` instead of nesting it")
STATEMENT_TOO_LONG = Message("E101", "this statement holds more than {tokens:,} tokens",
                             "no statement takes so many: end each one with a line break or `;`")
_STOPPED = "fix these and check again: the rest of the file was not checked"
TOO_MANY_SYNTAX_ERRORS = Message("E101", "too many syntax errors; stopped after {limit}", _STOPPED)
TOO_MANY_ERRORS = Message("E101", "too many errors; stopped after {limit}", _STOPPED)

MISSING_VALUE = Message("E102", "missing value after `{key}=`",
                        "give `{key}` a value right after `=`, or remove the option")
UNCLOSED_BLOCK = Message("E103", "this `{{` is never closed", "close the block with `}}`")
UNMATCHED_BRACE = Message("E104", "unmatched `}}`", "remove it, or open a block before it")
UNMATCHED_BRACKET = Message("E104", "unmatched `]`", "remove it; a list is written `[a, b, c]`")
POSITIONAL_AFTER_OPTION = Message("E105", "positional value after an option",
                                  "positionals come before options: `{statement}`")
UNTERMINATED_STRING = Message("E106", "unterminated string",
                              'close it with `"` on the same line; write `\\"` for a quote inside it')
UNKNOWN_ESCAPE = Message("E107", "unknown escape `\\{char}` in a string",
                         'only `\\"` and `\\\\` are escapes; write `/` in paths')
_NO_SPACES = "write options as `name=value`, with no spaces around `=`"
SPACE_BEFORE_EQUALS = Message("E108", "space before `=` in an option", _NO_SPACES)
SPACE_AFTER_EQUALS = Message("E108", "space after `=` in an option", _NO_SPACES)
_INVALID_NUMBER = "`{number}` is not a valid number"
INVALID_NUMBER = Message("E109", _INVALID_NUMBER, "separate values with spaces; numbers look like `64`, "
                         "`60_000`, `0.5`, `1e-3`, and shapes like `3x3`")
MISPLACED_UNDERSCORE = Message("E109", _INVALID_NUMBER, "`_` may only separate digits, as in `60_000`")
NUMBER_TOO_LARGE = Message("E109", "`{number}` is too large to be a number", "use a finite number")
UNCLOSED_LIST = Message("E110", "this `[` is never closed", "close the list with `]` on the same line")
NOT_UTF8 = Message("E111", "the file is not UTF-8 text (byte 0x{byte:02x} at offset {offset})",
                   "save the spec as UTF-8 text; a spec is never binary")

# --- names -----------------------------------------------------------------------------------

UNKNOWN_STATEMENT = Message("E200", "unknown statement `{keyword}`",
                            "run `dlc explain {code}` for the list of statements")
UNKNOWN_LAYER = Message("E201", "unknown layer `{keyword}`", "layers are {layers}")
SETTING_AS_LAYER = "`{keyword}` is a setting: write it outside blocks, without `layer`"

UNKNOWN_OPTION = Message("E202", "`{owner}` has no option `{option}`", "`{owner}` takes {options}")
OPTION_IS_POSITIONAL = "`{option}` is a positional value, written without its name: {usage}"
OPTION_OF_OTHERS = "`{option}` is an option of {owners}; `{owner}` takes {options}"
TARGET_ON_BUILTIN = Message("E202", "built-in dataset `{source}` has no option `target`",
                            "`target=` names the label column of a CSV file")
TARGET_ON_NPZ = Message("E202", "an NPZ source has no option `target`", "labels are the array `y`")

UNKNOWN_CHOICE = Message("E203", "unknown value `{name}` for {what}", "choose one of {choices}")
UNKNOWN_NAME = Message("E203", "unknown {table} `{name}`", "{table}s are {names}")

# --- values ----------------------------------------------------------------------------------

# How messages name a value: a setting's only value by the setting, a positional by its slot too.
SETTING_VALUE = "`{keyword}`"
POSITIONAL_VALUE = "`{keyword}` {slot}"
OPTION_VALUE = "`{option}`"
PARAMETER_DOC = "`{name}`: {doc}"  # the hint of a range error: what the value means
# The form of a statement, as hints show it.
USAGE = "`{form}`"
USAGE_WITH_EXAMPLE = "`{form}`, as in `{example}`"
FOR_EXAMPLE = "for example `{example}`"

WRONG_TYPE = Message("E300", "{what} must be {expected}, got {got} `{source}`")
GOT = {n.Int: "an integer", n.Float: "a number", n.Bool: "a boolean", n.Name: "a name", n.Str: "a string",
       n.Shape: "a shape"}
WHOLE_NUMBER = "write a whole number, like `{example}`"
NUMBER_IN_QUOTES = "numbers are written without quotes, like `0.5`"
STRING_WITHOUT_QUOTES = 'put it in double quotes: `"{name}"`'
NAME_IN_QUOTES = "write it without quotes: `{name}`"
NOT_TWO_SIDES = Message("E300", "{what} must have two sides, got `{source}`",
                        "write it as HxW, like `3x3`, or one integer for a square")

OUT_OF_RANGE = Message("E301", "{what} must be {range}, got {source}")  # hint: PARAMETER_DOC
SIDE_OUT_OF_RANGE = Message("E301", "{what} must be {range} on every side, got {source}")
COUNT_TOO_LARGE = Message("E301", "{what} must be ≤ {limit}, got {source}",
                          "counts and sizes go up to 2^31 - 1; no model needs more")

MISSING_POSITIONAL = Message("E302", "`{keyword}` needs `{slot}`: {doc}")  # hint: FOR_EXAMPLE
TOO_MANY_POSITIONALS = Message("E303", "`{keyword}` takes {takes}; `{source}` is one too many", "the form is {usage}")
POSITIONALS = Count("at most 1 positional value", "at most {} positional values", none="no positional values")
SET_TWICE = Message("E304", "`{keyword}` is set twice", "keep one `{keyword}` statement")
FIRST_SET_HERE = "first set here"
OPTION_TWICE = Message("E305", "option `{option}` is given twice", "remove one of them")
FIRST_GIVEN_HERE = "first given here"
METRIC_TWICE = Message("E305", "metric `{name}` is listed twice", "list it once")
FIRST_LISTED_HERE = "first listed here"
EMPTY_LIST = Message("E306", "a list needs at least one value: each value is one member of the sweep",
                     "write the values, `[1e-3, 1e-2]`, or one value without brackets")
NO_BLOCK_TAKEN = Message("E307", "`{keyword}` takes no block", "only `repeat` and `residual` hold a block of layers")
BLOCK_NEEDED = Message("E307", "`{keyword}` needs a block of layers", FOR_EXAMPLE)
SETTING_IN_BLOCK = Message("E308", "`{keyword}` cannot go inside a block",
                           "blocks hold layers; write settings at the top level")
TOO_MANY_LAYERS = Message("E309", "the model has {total:,} layers; at most {limit:,} are allowed",
                          "no network needs this many: remove layers")
TOO_MANY_REPEATED_LAYERS = Message("E309", "the model has {total:,} layers once `repeat` blocks are expanded; "
                                   "at most {limit:,} are allowed", "repeat fewer times: `repeat N` makes N copies "
                                   "of its block, each with its own weights")
_ANOTHER_NAME = "give one of them another `name=`"
DUPLICATE_NAME = Message("E310", "two layers are named `{name}`", _ANOTHER_NAME)
NAMING_THEN_ANOTHER_NAME = "{how}: " + _ANOTHER_NAME  # the hint when the name was made, not given
NAMED_BY_KIND = "a layer without `name=` is named after its kind and its index"
NAMED_PER_COPY = "inside `repeat`, `name={given}` gets each copy's number appended"
ALSO_NAMED_HERE = "also named here"
TOO_MANY_MEMBERS = Message("E311", "the sweep has {members:,} members ({lengths}); at most {limit:,} are allowed",
                           "sweep fewer values: each list multiplies the members")

# --- shapes ----------------------------------------------------------------------------------

SHRINKS = Message("E402", "`{keyword}` would shrink its {shape} input to {output}",
                  "use a smaller window or `padding=same`")
_ADDED = "the block's output is added to its input"
BLOCK_CHANGES_SHAPE = Message("E403", "`{block}` block changes the shape from {shape} to {output}",
                              _ADDED + ", so their shapes must be equal")
END_BLOCK_WITH = _ADDED + ": end it with a layer of shape {shape}, like `dense {units}`"
INPUT_VS_DATA = Message("E404", "`input {shape}` has {want} values per example, but `{data}` has {have}{data_shape}",
                        "use a shape with {have} values, like `input {have}`")
DATA_SHAPE = " ({shape})"  # what `{data_shape}` shows of data that is not flat
CONSTANT_OUTPUT = Message("E405", "a `{name}` over one unit is always 1, so nothing before it can learn",
                          "use `sigmoid` for one probability, or give the layer one unit per class")
TOKENS_NEED_EMBEDDING = Message("E407", "`{keyword}` cannot take token ids: `{data}` gives integer token ids, "
                                "which go through `embedding` first",
                                "add `embedding {vocab} 32` before it: a vector of 32 numbers for each token id")
EMBEDDING_NOT_FIRST = Message("E407", "`{keyword}` takes integer token ids, so it must be the model's first layer",
                              "move it to the top of the model, right after `input`")
EMBEDDING_ON_NUMBERS = Message("E407", "`{keyword}` takes integer token ids, but `{data}` holds numbers",
                               "start with a layer that takes numbers, like `dense`; for text, read a CSV column "
                               'with `text="COLUMN"`')
EMBEDDING_ON_FLOATS = Message("E407", "`{keyword}` takes integer token ids, but `{name}` in `{data}` holds {dtype} "
                              "values", "save token ids as integers, like `{name}.astype(np.int32)`; for numbers, "
                              "start with a layer that takes them, like `dense`")
VOCAB_TOO_SMALL = Message("E408", "`{keyword} {vocab}` has vectors for {vocab:,} token ids, but `{data}` gives ids "
                          "up to {last:,} (`vocab={given}`)",
                          "make it `{keyword} {given} ...`, or lower the data's `vocab=` to {vocab}")

# --- output, loss and data -------------------------------------------------------------------

OUTPUT_NOT_CLASSES = Message("E500", "`{loss}` needs a flat output with one unit per class, got {shape}",
                             "end with `flatten` then `dense CLASSES softmax`")
FOR_TWO_CLASSES = "for two classes use `dense 1 sigmoid` with `loss binary_crossentropy`, or `dense 2 softmax`"
OUTPUT_NOT_FLAT = Message("E500", "`{loss}` needs a flat output, got {shape}",
                          "end with `flatten` then `dense 1 sigmoid`")
UNITS = Count("1 unit", "{} units")
OUTPUT_SHAPE = "shape {shape}"  # the size of an output that is not flat
UNITS_VS_CLASSES = Message("E501", "the output has {units} but `{data}` has {classes} classes",
                           "end with `dense {classes} softmax`")
UNITS_VS_TWO_CLASSES = Message("E501", "`{loss}` needs one output unit for the two classes of `{data}`, got {got}",
                               "end with `dense 1 sigmoid`")
UNITS_VS_LABELS = Message("E502", "the output has {units} but `{data}` has {per_example} per example",
                          "end with `dense {width} sigmoid`")
LABELS = Count("1 label", "{} labels")
UNITS_VS_TARGETS = Message("E502", "the output has {units} but `{data}` has {per_example} per example",
                           "end with `dense {width}`")
TARGET_VALUES = Count("1 target value", "{} target values")
CLASS_INDEX_VS_LABELS = Message("E503", "`{loss}` needs one class index per example, but `{data}` has {width} "
                                "targets per example", "use `binary_crossentropy` for several labels")
CLASSES_VS_REGRESSION = Message("E503", "`{loss}` needs class labels, but the labels of `{data}` are not integers",
                                "use a regression loss such as `mse`, or store labels as integers")
TWO_CLASSES_VS_MORE = Message("E503", "`{loss}` is for two classes, but `{data}` has {classes}",
                              "use `loss categorical_crossentropy` with `dense {classes} softmax`")
REGRESSION_VS_CLASSES = Message("E503", "`{loss}` is a regression loss, but `{data}` has class labels",
                                "use `loss categorical_crossentropy` (or `binary_crossentropy` for two classes)")
METRIC_VS_REGRESSION = Message("E504", "`{name}` needs a classification loss, but the loss is `{loss}`",
                               "use `mae` or `mse` to measure a regression")
NOT_COMPUTED = Message("E505", "cannot monitor `{monitor}`: it is not computed", "monitor one of {known}")
DID_YOU_MEAN = "did you mean `{guess}`?"
METRIC_GUESS = DID_YOU_MEAN + " it needs `metrics {metric}`"
METRIC_NEEDED = "add `metrics {metric}` to compute it"
NO_VALIDATION_DATA = Message("E506", "`early_stop` monitors `{monitor}`, but there is no validation data",
                             "hold some out with {split}, or monitor `loss`")
HOLD_OUT_BUILTIN = "`data {name} val=0.1`"
HOLD_OUT_FILE = "`val=0.1` on `data`"
_NOT_FOR_TRAINING = "no `{setting}`: training needs one"
_ADD_SETTING = "add, for example, `{example}`"
NO_LOSS_TO_TRAIN = Message("E507", _NOT_FOR_TRAINING, _ADD_SETTING)
NO_OPTIMIZER_TO_TRAIN = Message("E508", _NOT_FOR_TRAINING, _ADD_SETTING)

METRIC_NOT_BINARY = Message("E509", "`{name}` needs a binary classifier (`binary_crossentropy` on one output "
                            "unit), but {what}", "for two classes use `dense 1 sigmoid` and `loss binary_crossentropy`")
NOT_BINARY_LOSS = "the loss is `{loss}`"
NOT_ONE_UNIT = "the output has {units} (one per label)"
CLASS_WEIGHT_LABELS = Message("E510", "`class_weight=balanced` needs one class per example, but the output has "
                              "{units}, one label each", "weigh classes of a `dense 1 sigmoid` or a softmax output")

# --- data files ------------------------------------------------------------------------------

_LOOKED_FOR = "looked for `{path}`"
FILE_NOT_FOUND = Message("E600", "data file `{source}` not found", _LOOKED_FOR)
LOOKED_FOR_RELATIVE = _LOOKED_FOR + "; a relative path starts at the spec's folder"
UNSUPPORTED_FILE = Message("E601", "unsupported data file `{source}`",
                           "use a `.csv` file with a header row or a `.npz` file with arrays `x` and `y`")
NO_SUCH_COLUMN = Message("E602", "`{file}` has no column `{target}`", "its columns are {columns}")
NO_TARGET = Message("E603", "a CSV source needs `target=` naming its label column",
                    'add `target="COLUMN"`, naming a column of the header')
NO_ARRAY = Message("E604", "`{file}` has no array `{name}`",
                   "an NPZ source holds arrays `x` and `y`; this one holds {held}")
NO_ARRAYS = "no arrays"
NOT_NUMBERS = Message("E604", "array `{name}` in `{file}` holds {what}, not numbers",
                      "save the features and labels as numbers")
DTYPE_KINDS = {"O": "Python objects", "U": "strings", "S": "bytes"}
OTHER_DTYPE_KIND = "values of dtype kind `{kind}`"
OBJECTS_NEVER_LOADED = "object arrays are never loaded: that would mean unpickling, which can run code"
SCALAR_ARRAY = Message("E604", "array `{name}` in `{file}` is a scalar, not examples",
                       "the first axis of each array counts the examples")
UNPAIRED_ARRAY = Message("E604", "`{file}` has `{have}{split}` but no `{lack}{split}`",
                         "save `x{split}` and `y{split}` together")
EXAMPLES_DISAGREE = Message("E604", "`x{split}` in `{file}` has {x} examples but `y{split}` has {y}",
                            "each example needs its label: the first axes must agree")
NOTHING_TO_TRAIN_ON = Message("E605", "`val={val:g}` and `test={test:g}` leave no training data",
                              "hold out less: the two fractions must add up to less than 1")
NOT_A_DATA_FILE = Message("E606", "data file `{source}` {problem}", "name a `.csv` or `.npz` file")
_HEADER_ROW = "the first row names the columns, e.g. `a,b,target`"
HEADER_TOO_LONG = Message("E606", "`{file}` has a header line over {limit:,} characters", _HEADER_ROW)
CSV_NOT_UTF8 = Message("E606", "`{file}` is not UTF-8 text", "save the CSV as UTF-8")
CANNOT_READ = Message("E606", "cannot read `{file}`: {reason}")
EMPTY_CSV = Message("E606", "`{file}` is empty: a CSV source needs a header row", _HEADER_ROW)
NO_FEATURES = Message("E606", "`{file}` has only the target column: there are no features")
NOT_AN_NPZ = Message("E606", "cannot read `{file}` as an NPZ archive: {reason}",
                     "write it with `numpy.savez(path, x=..., y=...)`")
CSV_OPTION_ON_BUILTIN = Message("E202", "built-in dataset `{source}` has no option `{option}`",
                                "`{option}=` is an option of a `.csv` source")
CSV_OPTION_ON_NPZ = Message("E202", "an NPZ source has no option `{option}`",
                            "`{option}=` is an option of a `.csv` source; an NPZ's arrays are numbers already")
TEXT_OPTION_WITHOUT_TEXT = Message("E607", "`{option}=` says how to read a text column, but `data` names none",
                                   'add `text="COLUMN"`, naming the column of text')
_IDS_NOT_SCALED = "token ids are indices into the vocabulary: drop `normalize=`"
TEXT_NORMALIZED = Message("E607", "`normalize={normalize}` cannot scale the token ids of the text column `{text}`",
                          _IDS_NOT_SCALED)
IDS_NORMALIZED = Message("E607", "`normalize={normalize}` cannot scale the token ids that `{keyword}` takes",
                         _IDS_NOT_SCALED)
TAKES_IDS_HERE = "the model's first layer takes token ids"
TEXT_IS_TARGET = Message("E607", "the text column `{text}` is the target column too",
                         "`text=` names the column of text the model reads, `target=` the column of labels")

# --- starting from a trained run (`init`) ----------------------------------------------------

_A_RUN_FOLDER = "name a folder that `dlc run SPEC --out DIR` wrote"
RUN_NOT_FOUND = Message("E700", "run folder `{run}` not found", _LOOKED_FOR)
NOT_A_RUN = Message("E700", "`{run}` is not a run folder: it has no `spec.dl`", _A_RUN_FOLDER)
NOT_A_RUN_FOLDER = Message("E700", "`{run}` is not a run folder: it is not a folder", _A_RUN_FOLDER)
RUN_SPEC_UNUSABLE = Message("E701", "cannot read the model of run `{run}`: {problem}",
                            "dlc reads the run's `spec.dl` (never its weights) to match its layers with these")
RUN_SPEC_LINK = "its `spec.dl` is a symbolic link"
RUN_SPEC_NOT_A_FILE = "its `spec.dl` is not a file"
RUN_SPEC_TOO_LARGE = "its `spec.dl` is over {limit:,} bytes"
RUN_SPEC_NOT_UTF8 = "its `spec.dl` is not UTF-8"
RUN_SPEC_CANNOT_READ = "cannot read its `spec.dl`: {reason}"
RUN_SPEC_ERROR = "its `spec.dl` has an error at line {line}: {message}"
RUN_SPEC_SHAPES_UNKNOWN = "its `spec.dl` leaves the input shape unknown"
COPIES_NOTHING = Message("E702", "`init` would copy no layer: no layer here has the name of a layer of run "
                         "`{run}` with parameters", "the run's layers with parameters are {names}; a layer starts "
                         "from the run's parameters when it has the name (`name=`) and the shapes of one of them")
NO_NAMES = "none"
OTHER_SHAPES = Message("E703", "`{name}` has {here} here but {there} in run `{run}`",
                       "give it the run's shapes to start from the run's parameters, or another `name=` to start "
                       "it fresh")
WEIGHTS = "parameters {shapes}"  # a layer's parameters, as E703 shows both sides
KIND_WEIGHTS = "a `{kind}` with parameters {shapes}"  # ... when the two layers' kinds differ
NO_WEIGHTS = "a `{kind}` without parameters"
LEFT_FRESH = Message("E704", "`{name}` would start fresh: run `{run}` has no layer `{name}` with parameters",
                     "`strict=true` asks that every layer with parameters start from the run: name it as one of "
                     "the run's layers, or drop `strict=true`")

# --- warnings --------------------------------------------------------------------------------

INPUT_UNKNOWN = Message("W100", "the input shape is unknown: shapes are checked when arrays arrive",
                        "add `input SHAPE` or `data SOURCE` to check them now")
_NOT_FOR_RUNNING = "no `{setting}`: `dlc run` and `fit` need one"
NO_LOSS = Message("W101", _NOT_FOR_RUNNING, _ADD_SETTING)
NO_OPTIMIZER = Message("W102", _NOT_FOR_RUNNING, _ADD_SETTING)
OUTPUT_ACTIVATION = Message("W103", "`{loss}` expects a `{expected}` output, not `{activation}`",
                            "end with `{expected}`, or `linear` for logits; as written, the loss takes the "
                            "`{activation}` outputs as logits")
UNSETTLED = Message("W104", "`{keyword}` needs about {needed:,} training steps for its running statistics to "
                    "settle, but the run has at most {steps:,} ({epochs} of {batches}): evaluation would use "
                    "statistics that never settled", "{lower}train for more epochs or with a smaller `batch`")
LOWER_MOMENTUM = "lower `momentum=` (`momentum={momentum:g}` settles in {steps}), or "
STEPS = Count("1 step", "{:,} steps")
EPOCHS = Count("1 epoch", "{:,} epochs")
BATCHES = Count("1 batch", "{:,} batches")
NOTHING_TO_FREEZE = Message("W105", "`{keyword}` has no parameters: `trainable=false` freezes nothing",
                            "remove `trainable=false`")
