'''The data parts of an emitted program (`emit_py`): reading the spec's data, then splitting,
encoding and normalizing it as `runtime.sources.load_source` and `runtime.data.prepare` do, step
for step (tests/emit holds the two to the same history). `@NAME@` marks a value `emit_py` fills in.
'''

from __future__ import annotations

DATA_PARTS: dict[str, str] = {}

# --- data: `runtime.sources.load_source` and `runtime.data.prepare` ---------------------------

DATA_PARTS["load_builtin"] = '''
# --- data -------------------------------------------------------------------------------------


def load_data():
    """(x, y, parts the data brings itself): the copy of the dataset in scikit-learn's wheel."""
    from sklearn.datasets import @LOADER@

    x, y = @LOADER@(return_X_y=True)
    return np.asarray(x), np.asarray(y), {}
'''

DATA_PARTS["load_csv"] = '''
# --- data -------------------------------------------------------------------------------------


def load_data():
    """(x, y, parts the data brings itself) from the CSV file: every column but the target is a
    feature, read as float32; the target is numbers when every cell is one, else class names."""
    with open(DATA_FILE, newline="", encoding="utf-8-sig") as f:
        header = [cell.strip() for cell in next(csv.reader(f))]
    target = header.index(TARGET)
    features = [j for j in range(len(header)) if j != target]
    with open(DATA_FILE, newline="", encoding="utf-8-sig") as f:
        next(csv.reader(f))
        x = np.loadtxt(f, dtype=np.float32, delimiter=",", quotechar='"', comments=None, ndmin=2, usecols=features)
    with open(DATA_FILE, newline="", encoding="utf-8-sig") as f:
        cells = [row[target] for row in itertools.islice(csv.reader(f), 1, None) if row]
    try:
        values = np.array([float(cell) for cell in cells])
    except ValueError:
        return x, np.array([cell.strip() for cell in cells]), {}
    whole = np.array_equal(values, np.round(values)) and np.abs(values).max() < 2**53
    return x, values.astype(np.int64) if whole else values, {}
'''

DATA_PARTS["load_npz"] = '''
# --- data -------------------------------------------------------------------------------------


def load_data():
    """(x, y, parts the data brings itself: `x_val`/`y_val`, `x_test`/`y_test`) from the NPZ file."""
    with np.load(DATA_FILE, allow_pickle=False) as arrays:
        given = {part: (arrays[f"x_{part}"], arrays[f"y_{part}"]) for part in ("val", "test") if f"x_{part}" in arrays}
        return arrays["x"], arrays["y"], given
'''

DATA_PARTS["load_arrays"] = '''
# --- data -------------------------------------------------------------------------------------


def load_data():
    """The model was trained on arrays given to `fit`, which this file cannot know: load them here."""
    raise SystemExit("@NAME@ was trained on arrays given to fit(): write load_data() to return (x, y, {})")
'''

DATA_PARTS["class_labels"] = '''
def class_labels(y):
    """One class label per example: text, integers or booleans (whole floats become integers)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    return y.astype(np.int64) if y.dtype.kind == "f" else y


def indices(ys, labels):
    """Each label replaced by its position in `labels`."""
    position = {label: i for i, label in enumerate(labels)}
    return {part: np.array([position[label] for label in y.tolist()], dtype=np.int32) for part, y in ys.items()}


def sorted_labels(ys):
    """Every label found, sorted (numbers before text)."""
    found = {label for y in ys.values() for label in np.unique(y).tolist()}
    return sorted(found, key=lambda label: (isinstance(label, str), label))
'''

DATA_PARTS["encode_categorical"] = '''
def encode_labels(ys):
    """Class indices (int32) into the sorted labels found, and those labels."""
    ys = {part: class_labels(y) for part, y in ys.items()}
    labels = sorted_labels(ys)
    return indices(ys, labels), labels
'''

DATA_PARTS["encode_binary_labels"] = '''
def encode_labels(ys):
    """One 0/1 column (float32) per example: the position of its label among the two sorted ones."""
    ys = {part: class_labels(y.reshape(len(y), 1) if y.ndim == 1 else y) for part, y in ys.items()}
    labels = sorted_labels(ys)
    labels = [0, 1] if set(labels) <= {0, 1} else labels
    return {part: y.astype(np.float32).reshape(-1, 1) for part, y in indices(ys, labels).items()}, labels
'''

DATA_PARTS["encode_multilabel"] = '''
def encode_labels(ys):
    """Several 0/1 labels per example, as float32 rows."""
    return {part: y.reshape(len(y), -1).astype(np.float32) for part, y in ys.items()}, [0, 1]
'''

DATA_PARTS["encode_regression"] = '''
def encode_labels(ys):
    """Numeric targets as float32 rows; a regression has no labels."""
    return {part: y.astype(np.float64).reshape(len(y), -1).astype(np.float32) for part, y in ys.items()}, None
'''

_SIZES = '''
    sizes = {
        part: max(1, round(fraction * n)) if fraction > 0 else 0 for part, fraction in (("test", test), ("val", val))
    }
    if not any(sizes.values()):
        return {"train": np.arange(n)}
    order = np.random.default_rng(seed).permutation(n) if SHUFFLE else np.arange(n)
'''.strip("\n")

DATA_PARTS["split"] = f'''
def split_indices(n, val, test, seed, strata):
    """Example indices per part: a seeded permutation (or the file order) cut into train, val, test."""
{_SIZES}
    train_end, val_end = n - sizes["val"] - sizes["test"], n - sizes["test"]
    parts = {{"train": order[:train_end], "val": order[train_end:val_end], "test": order[val_end:]}}
    return {{part: index for part, index in parts.items() if len(index)}}
'''

DATA_PARTS["split_stratified"] = f'''
def split_indices(n, val, test, seed, strata):
    """Example indices per part: held-out parts (test first) take every class in proportion to what
    is left of it, from a seeded permutation; each part keeps the permutation's order."""
{_SIZES}
    pools = [order[strata[order] == c] for c in np.unique(strata)]  # each class in shuffled order
    left = np.array([len(pool) for pool in pools])
    taken = np.zeros_like(left)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    parts = {{}}
    for part, size in sizes.items():
        quota = size * left / left.sum()  # `size` examples shared in proportion, largest remainders first
        share = np.floor(quota).astype(left.dtype)
        share[np.argsort(share - quota, kind="stable")[: size - share.sum()]] += 1
        parts[part] = np.concatenate([pool[t : t + s] for pool, t, s in zip(pools, taken, share)])
        taken, left = taken + share, left - share
    parts["train"] = np.concatenate([pool[t:] for pool, t in zip(pools, taken)])
    parts = {{part: index[np.argsort(rank[index])] for part, index in parts.items()}}
    return {{part: index for part, index in parts.items() if len(index)}}
'''

_NORMALIZED = '''
def normalized(x, shift, scale):
    """Examples flattened, (x - shift) / scale per feature, in float32."""
    flat = x.reshape(len(x), -1)
    dtype = flat.dtype if flat.dtype == np.float32 else np.float64
    return ((flat - np.asarray(shift, dtype)) / np.asarray(scale, dtype)).astype(np.float32, copy=False)
'''

DATA_PARTS["normalize_standard"] = '''
def normalization(flat):
    """Per-feature mean and standard deviation of the training part; a constant feature is only shifted."""
    shift, scale = flat.mean(0, dtype=np.float64), flat.std(0, dtype=np.float64)
    return shift, np.where(np.ptp(flat, 0) == 0, 1.0, scale)

''' + _NORMALIZED

DATA_PARTS["normalize_minmax"] = '''
def normalization(flat):
    """Per-feature minimum and range of the training part; a constant feature is only shifted."""
    shift, scale = flat.min(0).astype(np.float64), np.ptp(flat, 0).astype(np.float64)
    return shift, np.where(np.ptp(flat, 0) == 0, 1.0, scale)

''' + _NORMALIZED

DATA_PARTS["normalize_none"] = '''
def normalization(flat):
    """`normalize=none`: features are used as they are."""
    return None, None


def normalized(x, shift, scale):
    """Examples flattened, in float32."""
    return x.reshape(len(x), -1).astype(np.float32, copy=False)
'''

DATA_PARTS["normalize_tokens"] = '''
def normalization(flat):
    """Token ids are indices into the embedding: never normalized."""
    return None, None


def normalized(x, shift, scale):
    """Token ids as they are, int32."""
    return x.reshape(len(x), -1)
'''

DATA_PARTS["examples"] = '''
def examples(x):
    """x as numbers: float32 stays float32, anything else becomes float64 (as statistics are computed)."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float64)
'''

DATA_PARTS["examples_tokens"] = '''
def examples(x):
    """x as int32 token ids, straight into the model's embedding (never through floats)."""
    return np.asarray(x).astype(np.int32, copy=False)
'''

DATA_PARTS["prepare"] = '''
def prepare_data(seed):
    """{part: (x, y)} for train and, where the spec holds them out, val and test, split, encoded and
    normalized (fitted on the training part) as `dlc run` does; and the class labels."""
    x, y, given = load_data()
    x = examples(x)
    encoded, labels = encode_labels({"all": np.asarray(y), **{part: np.asarray(py) for part, (_, py) in given.items()}})
    @SPLIT@
    xs = {part: examples(px) for part, (px, _) in given.items()} | {part: x[index] for part, index in parts.items()}
    ys = {part: encoded[part] for part in given} | {part: encoded["all"][index] for part, index in parts.items()}
    shift, scale = normalization(xs["train"].reshape(len(xs["train"]), -1))
    return {
        part: (normalized(xs[part], shift, scale).reshape(len(xs[part]), *INPUT_SHAPE), ys[part])
        for part in ("train", "val", "test")
        if part in xs
    }, labels
'''
