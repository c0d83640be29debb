"""A toy German-English corpus that tests make: word-for-word translations that small models learn
in seconds, so that the tests can check learning without real data."""

from __future__ import annotations

import random
from pathlib import Path

LEXICON = {
    "der": "the",
    "die": "the",
    "ein": "a",
    "eine": "a",
    "mann": "man",
    "frau": "woman",
    "kind": "child",
    "hund": "dog",
    "katze": "cat",
    "ball": "ball",
    "haus": "house",
    "auto": "car",
    "spielt": "plays",
    "sieht": "sees",
    "trägt": "carries",
    "läuft": "runs",
    "sitzt": "sits",
    "mit": "with",
    "auf": "on",
    "vor": "in front of",
    "neben": "next to",
    "dem": "the",
    "einem": "a",
    "roten": "red",
    "blauen": "blue",
    "großen": "big",
    "kleinen": "small",
    "alten": "old",
    "jungen": "young",
    "schnell": "quickly",
    "heute": "today",
    "im": "in the",
    "park": "park",
    "garten": "garden",
    "strand": "beach",
}
SUBJECTS = [("ein", "mann"), ("eine", "frau"), ("ein", "kind"), ("der", "hund"), ("die", "katze")]
VERBS = ["spielt", "sieht", "trägt", "läuft", "sitzt"]
ADJECTIVES = ["roten", "blauen", "großen", "kleinen", "alten", "jungen"]
OBJECTS = ["ball", "haus", "auto", "hund"]
PLACES = ["park", "garten", "strand"]


def toy_pair(rng: random.Random) -> tuple[str, str]:
    words = list(rng.choice(SUBJECTS)) + [rng.choice(VERBS)]
    if rng.random() < 0.7:
        words += [rng.choice(["mit", "neben", "vor"]), rng.choice(["dem", "einem"])]
        if rng.random() < 0.6:
            words.append(rng.choice(ADJECTIVES))
        words.append(rng.choice(OBJECTS))
    if rng.random() < 0.5:
        words += ["im", rng.choice(PLACES)]
    if rng.random() < 0.3:
        words.append(rng.choice(["schnell", "heute"]))
    german = " ".join(words).capitalize() + " ."
    english = " ".join(LEXICON[w] for w in words).capitalize() + " ."
    return german, english


def write_toy_corpus(path: str | Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            f.write("\t".join(toy_pair(rng)) + "\n")
    return path
