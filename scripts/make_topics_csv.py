"""Write `data/topics.csv`, the text-classification example (`specs/text.dl`): 360 short messages on
three topics (`sport`, `cooking`, `weather`), 120 each, made from word lists with a fixed seed, so
the same bytes on every run. Each message mixes words of its topic with words any message may use,
and one in six also borrows a word of another topic, so that a bag of words is not enough to be sure.

Columns: `id`, `text` (lower case, 4 to 14 words), `topic`. Usage:
`python scripts/make_topics_csv.py [--out FILE]` (default: the repository's `data/topics.csv`).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from pathlib import Path

SEED = 0
PER_TOPIC = 120
ROOT = Path(__file__).resolve().parent.parent

TOPICS = {
    "sport": ("match goal team coach league score players season win lost final referee striker keeper "
              "stadium fans training race runner medal"),
    "cooking": ("recipe oven bake flour sugar butter onions garlic soup sauce pan salt pepper dinner "
                "chicken pasta roast dough taste kitchen"),
    "weather": ("rain sunny cloudy storm wind forecast snow cold warm temperature fog showers thunder "
                "umbrella frost degrees humid breeze sky heat"),
}
COMMON = ("the a and but then today tomorrow we they it was is will very really again after before "
          "our this that with at on in").split()


def message(rng: random.Random, topic: str) -> str:
    own = TOPICS[topic].split()
    words = [rng.choice(own) for _ in range(rng.randint(2, 5))]
    words += [rng.choice(COMMON) for _ in range(rng.randint(2, 8))]
    if rng.random() < 1 / 6:
        other = rng.choice([t for t in TOPICS if t != topic])
        words.append(rng.choice(TOPICS[other].split()))
    rng.shuffle(words)
    return " ".join(words)


def rows() -> list[list[str]]:
    rng = random.Random(SEED)
    labelled = [topic for topic in TOPICS for _ in range(PER_TOPIC)]
    rng.shuffle(labelled)
    return [[str(i), message(rng, topic), topic] for i, topic in enumerate(labelled, 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "topics.csv")
    args = parser.parse_args(argv)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "text", "topic"])
    writer.writerows(rows())
    args.out.write_text(text.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
