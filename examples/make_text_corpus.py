"""Write a small generated corpus, one folder per topic and one .txt file per document: the
layout `data.source: {type: text_folder}` reads (configs/text_topics.yaml), as IMDB's
reviews are laid out.

    python examples/make_text_corpus.py data/topics

Each document mixes words of its topic with words every topic shares, drawn from a fixed
seed, so the corpus is the same on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TOPICS = {
    "sport": "goal match team score player coach league season win referee stadium",
    "cooking": "bread cheese soup recipe oven salt dinner taste butter garlic simmer",
    "weather": "rain cloud storm sunny wind forecast snow cold humid thunder breeze",
}
SHARED = "the a and today we they it was very really some new old good long".split()


def write_corpus(folder: Path, per_topic: int = 150, seed: int = 0) -> int:
    """per_topic documents of 8 to 30 words for every topic, as folder/<topic>/<n>.txt."""
    rng = np.random.default_rng(seed)
    for topic, words in TOPICS.items():
        place = folder / topic
        place.mkdir(parents=True, exist_ok=True)
        own = words.split()
        for index in range(per_topic):
            length = int(rng.integers(8, 31))
            mine = rng.random(length) < 0.35  # about a third of the words give the topic away
            text = [str(rng.choice(own)) if m else str(rng.choice(SHARED)) for m in mine]
            (place / f"{index:04d}.txt").write_text(" ".join(text) + "\n", encoding="utf-8")
    return per_topic * len(TOPICS)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/topics")
    count = write_corpus(target)
    sys.stdout.write(f"{count} documents written under {target}\n")
