"""Write `data/wine_mixed.csv`, a tabular dataset with a text category and missing cells, from
scikit-learn's bundled wine data (nothing is downloaded), the same bytes on every run.

The 178 wines of three cultivars (Forina et al., in scikit-learn's wheel) keep 11 of their 13
measurements as they are. Two become text, as a wine list would write them:
- `colour`: the colour intensity as `pale` (below 3.5), `medium` (below 6) or `deep`;
- `hue`: `brown` (below 0.7), `amber` (below 1.0) or `red`;
and the label `cultivar` is the class's name (`class_0`, `class_1`, `class_2`, scikit-learn's).
Cells of four columns (`alcohol`, `magnesium`, `colour`, `hue`) are missing by a fixed rule (row i,
column j: `(31 i + 17 j) % 23 == 0`), written in turn as an empty cell, `NA` and `?`: 8 or 7 rows
per column. Numbers are written as scikit-learn's file writes them (`%g`).

Usage: `python scripts/make_wine_csv.py [--out FILE]` (default: the repository's data/wine_mixed.csv).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MISSING_IN = ("alcohol", "magnesium", "colour", "hue")
MARKERS = ("", "NA", "?")
BINS = {"color_intensity": ("colour", ((3.5, "pale"), (6.0, "medium"), (float("inf"), "deep"))),
        "hue": ("hue", ((0.7, "brown"), (1.0, "amber"), (float("inf"), "red")))}


def category(value: float, bins) -> str:
    return next(name for limit, name in bins if value < limit)


def table() -> str:
    from sklearn.datasets import load_wine

    wine = load_wine()
    header = [BINS[name][0] if name in BINS else name for name in wine.feature_names] + ["cultivar"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    marks = 0
    for i, (row, label) in enumerate(zip(wine.data.tolist(), wine.target.tolist(), strict=True)):
        cells = [category(v, BINS[name][1]) if name in BINS else f"{v:g}"
                 for name, v in zip(wine.feature_names, row, strict=True)]
        for j, column in enumerate(header[:-1]):
            if column in MISSING_IN and (31 * i + 17 * j) % 23 == 0:
                cells[j] = MARKERS[marks % len(MARKERS)]
                marks += 1
        writer.writerow(cells + [wine.target_names[label]])
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "wine_mixed.csv")
    args = ap.parse_args()
    args.out.write_text(table(), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
