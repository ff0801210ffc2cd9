"""Did-you-mean: rank known names with difflib and offer only close ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], synonyms: dict[str, str] | None = None) -> str | None:
    """The known name closest to `word`, or None when nothing is close."""
    candidates = list(candidates)
    if synonyms and word in synonyms:
        return synonyms[word]
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if match:
        return match[0]
    # An abbreviation (`acc`, `cat`): the one known name it starts.
    starting = [c for c in candidates if len(word) >= 3 and c.lower().startswith(word.lower())]
    return starting[0] if len(starting) == 1 else None


def did_you_mean(word: str, candidates: Iterable[str], synonyms: dict[str, str] | None = None) -> str | None:
    match = closest(word, candidates, synonyms)
    return f"did you mean `{match}`?" if match else None
