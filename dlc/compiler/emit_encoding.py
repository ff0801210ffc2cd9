'''The data parts of an emitted program for a CSV whose cells dlc encodes (`runtime.tabular`,
`encoding`, `text`, `table`): categorical columns one-hot over the training split's sorted
categories, missing cells filled (`missing=mean`), dropped (`drop`) or refused (`error`) and a
`text=` column as token ids. Each part mirrors its runtime function step for step; tests/emit holds
the two to the same history, and pins the emitted tokenizer to `runtime.text` on tricky texts (the
runtime's own source cannot be emitted as it is: it is not written as `ruff format` writes code).
'''

from __future__ import annotations

import json

from dlc.compiler import ir
from dlc.compiler.csvfacts import MISSING_MARKERS


def encodes_cells(data: ir.Data | None) -> bool:
    """Whether `dlc run` reads `data`'s CSV as cells to encode (a `Table`) rather than as numbers."""
    return data is not None and data.source == "csv" and (
        data.text is not None or bool(data.categorical) or data.missing != "error")


def settings(data: ir.Data) -> list[str]:
    """The settings lines of the encoding: how missing cells are read and treated, and the text column."""
    markers = ", ".join(json.dumps(marker) for marker in sorted(MISSING_MARKERS))
    lines = [f"MISSING = {json.dumps(data.missing)}  # a missing feature cell: filled in (mean), its row dropped, or an error",
             f"MISSING_MARKERS = {{{markers}}}"]
    if data.text is None:
        return [*lines, "TEXT_COLUMN = None"]
    return [*lines, f"TEXT_COLUMN = {json.dumps(data.text)}  # the only feature, read as token ids",
            f"TOKENS, VOCAB, LENGTH = {json.dumps(data.tokenize)}, {data.vocab!r}, {data.features[0]!r}"]


def parts(data: ir.Data) -> list[str]:
    """The parts that read and encode the table, before the labels' and the normalization's."""
    if data.text is not None:
        return [ENCODING_PARTS["read_table"], ENCODING_PARTS["tokens"], ENCODING_PARTS["encode_text"]]
    return [ENCODING_PARTS["read_table"], ENCODING_PARTS["encode_columns"]]


def prepare(split: str) -> str:
    return ENCODING_PARTS["prepare"].replace("@SPLIT@", split)


ENCODING_PARTS: dict[str, str] = {}

ENCODING_PARTS["read_table"] = '''
# --- data -------------------------------------------------------------------------------------


def read_table():
    """(feature columns, each one's cells as text, stripped; each row's line in the file; the target
    cells and which of them are missing) of the CSV file, blank lines left out."""
    with open(DATA_FILE, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [cell.strip() for cell in next(reader)]
        columns = [TEXT_COLUMN] if TEXT_COLUMN else [name for name in header if name != TARGET]
        rows, lines = [], []
        for row in reader:
            if row and len(row) != len(header):
                raise SystemExit(f"{DATA_FILE.name} row {reader.line_num}: {len(row)} cells, the header {len(header)}")
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    cells = [np.array([row[header.index(name)].strip() for row in rows], dtype=object) for name in columns]
    return columns, cells, np.array(lines), target_column([row[header.index(TARGET)] for row in rows])


def missing(cells):
    """Which cells are missing: empty, or one of the markers."""
    return np.array([cell in MISSING_MARKERS for cell in cells.tolist()], dtype=bool).reshape(len(cells))


def target_column(cells):
    """(the target cells as numbers when every present one is a number, integers when all are whole,
    else as class names; which are missing, holding the first present label in their place)."""
    absent = np.array([cell.strip() in MISSING_MARKERS for cell in cells], dtype=bool)
    if absent.all():
        raise SystemExit(f"every cell of the target column `{TARGET}` of {DATA_FILE.name} is missing")
    present = [cell for cell, gone in zip(cells, absent) if not gone]
    try:
        values = np.array([float(cell) for cell in present])
    except ValueError:
        values = np.array([cell.strip() for cell in present])
    else:
        if not np.isfinite(values).all():
            raise SystemExit(f"the target column `{TARGET}` of {DATA_FILE.name} holds a number that is not finite")
        whole = np.array_equal(values, np.round(values)) and np.abs(values).max() < 2**53
        values = values.astype(np.int64) if whole else values
    y = np.empty(len(cells), values.dtype)
    y[~absent], y[absent] = values, values[0]
    return y, absent


def cell_error(lines, i, column, problem):
    return SystemExit(f"{DATA_FILE.name} row {lines[i]}, column `{column}`: {problem}")
'''

ENCODING_PARTS["tokens"] = r'''
WORD = re.compile(r"(?:[^\W_]|')+")


def tokens(text):
    """`word`: the lowercased text's maximal runs of letters, digits and apostrophes (’ read as '),
    apostrophes at either end removed; `char`: every character of the lowercased text."""
    text = text.lower()
    if TOKENS == "char":
        return list(text)
    words = (match.strip("'") for match in WORD.findall(text.replace("\u2019", "'")))
    return [word for word in words if word]


def vocabulary(texts):
    """The tokens that get ids 2, 3, ... (0 is padding, 1 unknown): the most frequent first, ties by
    text, at most VOCAB - 2."""
    counts = collections.Counter(token for text in texts for token in tokens(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: VOCAB - 2]]


def token_ids(texts, words):
    """Each text's first LENGTH token ids (1 for a token outside `words`), padded with 0, int32."""
    index = {word: i + 2 for i, word in enumerate(words)}
    rows = [[index.get(token, 1) for token in tokens(text)[:LENGTH]] for text in texts]
    return np.array([ids + [0] * (LENGTH - len(ids)) for ids in rows], dtype=np.int32).reshape(len(rows), LENGTH)
'''

ENCODING_PARTS["encode_text"] = '''
def fit_encoding(columns, cells):
    """The text column's record (as dlc saves it in preprocessing.json): the training split's vocabulary."""
    vocab = vocabulary(cells[0].tolist())
    return [{"column": TEXT_COLUMN, "kind": "text", "tokens": TOKENS, "length": LENGTH, "vocab": vocab}]


def encode(encoding, cells, lines):
    """The token ids of each row's text."""
    return token_ids(cells[0].tolist(), encoding[0]["vocab"])


def scaling(encoding, train):
    """Token ids are indices into the embedding: never normalized."""
    return None, None
'''

ENCODING_PARTS["encode_columns"] = '''
def fit_encoding(columns, cells):
    """Per feature column, from the training split's cells, a record as dlc saves it in
    preprocessing.json: a number column (every present cell a number) and its mean, or a categorical
    one, its sorted categories and the most frequent (ties: the first in that order), which fill a
    missing cell under `missing=mean`."""
    encoding = []
    for name, column in zip(columns, cells):
        present = column[~missing(column)]
        try:
            numbers = present.astype(np.float64)
        except ValueError:
            counts = collections.Counter(present.tolist())
            mode = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
            encoding.append({"column": name, "kind": "category", "categories": sorted(counts), "mode": mode})
            continue
        mean = math.fsum(numbers.tolist()) / len(numbers) if len(numbers) else None
        mean = mean if mean is not None and math.isfinite(mean) else None
        encoding.append({"column": name, "kind": "number", "mean": mean})
    return encoding


def encode(encoding, cells, lines):
    """The rows' features, float32: a number column's value, a categorical one's one-hot (a category
    the training split lacks: all zeros); a missing cell is first filled in as fitted."""
    features = []
    for record, column in zip(encoding, cells):
        gone = missing(column)
        if gone.any():
            fill = record["mean"] if record["kind"] == "number" else record["mode"]
            if fill is None:
                problem = "the cell is missing, and the column has no value in the training split to fill it with"
                raise cell_error(lines, int(np.argmax(gone)), record["column"], problem)
            column = column.copy()
            column[gone] = repr(fill) if record["kind"] == "number" else fill
        if record["kind"] == "number":
            features.append(numbers(column, lines, record["column"])[:, None])
        else:
            features.append(one_hot(column, record))
    return np.concatenate(features, axis=1)


def numbers(column, lines, name):
    """A number column's cells as float32; one that is no finite float32 number is an error."""
    values = np.array([float32(cell) for cell in column.tolist()], dtype=np.float64)
    if np.isnan(values).any():
        i = int(np.argmax(np.isnan(values)))
        raise cell_error(lines, i, name, f"`{column[i]}` is not a finite float32 number")
    return values.astype(np.float32)


def float32(cell):
    """A cell's number when float32 holds it (finite, not rounded up to infinity), else NaN."""
    try:
        value = float(cell)
    except ValueError:
        return math.nan
    return value if abs(value) < 2.0**128 - 2.0**103 else math.nan


def one_hot(column, record):
    position = {category: i for i, category in enumerate(record["categories"])}
    index = np.array([position.get(cell, -1) for cell in column.tolist()], dtype=np.int64).reshape(len(column))
    known = index >= 0
    out = np.zeros((len(column), len(position)), np.float32)
    out[np.flatnonzero(known), index[known]] = 1.0
    if not known.all():
        unseen = int((~known).sum())
        print(f"note: column `{record['column']}`: {unseen} rows hold a category the training split lacks (all zeros)")
    return out


def scaling(encoding, train):
    """Normalization fitted on the training part's number features; one-hot features are shifted by
    0 and scaled by 1 (left as they are)."""
    numeric = np.concatenate([np.full(len(r.get("categories", [0])), r["kind"] == "number") for r in encoding])
    shift, scale = np.zeros(len(numeric)), np.ones(len(numeric))
    if numeric.any() and NORMALIZE != "none":
        shift[numeric], scale[numeric] = normalization(train[:, numeric])
    return shift, scale
'''

ENCODING_PARTS["prepare"] = '''
def prepare_data(seed):
    """{part: (x, y)} for train and, where the spec holds them out, val and test, as `dlc run`
    prepares a CSV's cells: rows with a missing cell dropped (`missing=drop`) or the first missing
    cell an error (`missing=error`), the split, the encoding fitted on the training part, then the
    normalization; and the class labels."""
    columns, cells, lines, (y, label_missing) = read_table()
    features = [j for j, name in enumerate(columns) if name != TEXT_COLUMN]  # a text's cells are as written
    if MISSING == "drop":
        kept = np.flatnonzero(~np.logical_or.reduce([label_missing, *(missing(cells[j]) for j in features)]))
        if not len(kept):
            raise SystemExit(f"every row of {DATA_FILE.name} has a missing cell: `missing=drop` leaves none")
        cells, lines, y, label_missing = [column[kept] for column in cells], lines[kept], y[kept], label_missing[kept]
    if MISSING == "error":  # the file's first missing cell
        first = min(((int(np.argmax(gone)), j) for j in features if (gone := missing(cells[j])).any()), default=None)
        if first is not None:
            problem = "the cell is missing; set `missing=mean` (fill it in) or `missing=drop` (drop its row)"
            raise cell_error(lines, first[0], columns[first[1]], problem)
    if label_missing.any():
        problem = "the cell is missing, and a label is never filled in: set `missing=drop` to drop its row"
        raise cell_error(lines, int(np.argmax(label_missing)), TARGET, problem)
    encoded, labels = encode_labels({"all": y})
    @SPLIT@
    encoding = fit_encoding(columns, [column[parts["train"]] for column in cells])
    xs = {part: encode(encoding, [column[parts[part]] for column in cells], lines[parts[part]]) for part in parts}
    shift, scale = scaling(encoding, xs["train"])
    return {
        part: (normalized(xs[part], shift, scale).reshape(len(xs[part]), *INPUT_SHAPE), encoded["all"][parts[part]])
        for part in ("train", "val", "test")
        if part in xs
    }, labels
'''
