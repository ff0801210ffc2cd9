"""Text to integer tokens (`text="COLUMN"` on a CSV source): the tokenizer, the vocabulary built
from the training split, and the ids of every text, cut or padded to one length.

Tokens. `word`: the text lowercased (`str.lower`), a typographic apostrophe (’) read as `'`, then
every maximal run of letters, digits (Unicode's, as `str.isalnum` says) and apostrophes is a token,
with the apostrophes at either end removed: "Don't STOP, it’s 9am!" gives `don't`, `stop`, `it's`,
`9am`. `char`: every character of the lowercased text, spaces and punctuation included.

Ids. 0 is padding and 1 an unknown token; the vocabulary's tokens take 2, 3, ... from the most
frequent in the training texts down, ties broken by the token's text (Python's string order), at
most `vocab - 2` of them. A text's ids are its first `length` tokens, padded with 0 at the end.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

PADDING, UNKNOWN = 0, 1
RESERVED = 2
_WORD = re.compile(r"(?:[^\W_]|')+")


def tokens(text: str, kind: str) -> list[str]:
    """The tokens of one text (see the module's docstring)."""
    text = text.lower()
    if kind == "char":
        return list(text)
    words = (match.strip("'") for match in _WORD.findall(text.replace("\u2019", "'")))
    return [word for word in words if word]


def vocabulary(texts: Iterable[str], kind: str, vocab: int) -> list[str]:
    """The tokens that get ids 2, 3, ...: the most frequent in `texts` first, ties by text, at most
    `vocab - 2`."""
    counts = Counter(token for text in texts for token in tokens(text, kind))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[:vocab - RESERVED]]


def token_ids(texts: Iterable[str], kind: str, words: list[str], length: int) -> tuple[np.ndarray, int]:
    """(ids, int32 (texts, length), and how many tokens were unknown) of each text with the
    vocabulary `words`."""
    index = {word: i + RESERVED for i, word in enumerate(words)}
    rows, unknown = [], 0
    for text in texts:
        ids = [index.get(token, UNKNOWN) for token in tokens(text, kind)[:length]]
        unknown += ids.count(UNKNOWN)
        rows.append(ids + [PADDING] * (length - len(ids)))
    return np.array(rows, dtype=np.int32).reshape(len(rows), length), unknown
