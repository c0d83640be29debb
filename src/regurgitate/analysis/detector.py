"""S3: a classifier that tells human translations from generated ones, given source and target.

Character and word n-grams of the target (hashed, so no vocabulary is fitted or stored) plus a
few source-target features (length ratios, repeated words, words copied from the source) go into
a logistic regression: scikit-learn's well-tested implementation is deterministic, fits the
thousand-pair detector pool in seconds on a CPU, and needs no GPU or tokenizer. Generated
text gives itself away by surface traits (repetition, dropped or untranslated words, unusual
lengths, a narrower vocabulary), which is what n-grams and these ratios see.

Training data (see `detector_data`): the detector pool's sources are split, by seed, into a
training and a held-out part, so held-out scores are on sources the detector never saw. Each
source contributes both its human and its generated target, each with its label. Using both
keeps the two classes on the same sources: the detector cannot learn "this kind of sentence is
human" from content, only how the translation is written; and a held-out source is unseen
under either label, so nothing of it leaks. Where the generator wrote exactly the human
translation, the pair sits in both classes: it is indistinguishable, and counted so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from regurgitate.io import atomic_path
from regurgitate.study.curricula import generated_targets

HASHED_FEATURES = 2**18
WORD = re.compile(r"\w+")

# Column positions in the (n, 2) array the pipeline takes.
SOURCE, TARGET = 0, 1


def pair_features(pairs: np.ndarray) -> np.ndarray:
    """Dense features of each (source, target): log length ratios in characters and words,
    target length, share of repeated target words, share of target words found in the source."""
    rows = []
    for source, target in pairs:
        source_words = WORD.findall(source.lower())
        source_vocabulary = set(source_words)
        target_words = WORD.findall(target.lower())
        n_target = max(len(target_words), 1)
        rows.append(
            [
                np.log((len(target) + 1) / (len(source) + 1)),
                np.log((len(target_words) + 1) / (len(source_words) + 1)),
                np.log1p(len(target_words)),
                1.0 - len(set(target_words)) / n_target,
                sum(w in source_vocabulary for w in target_words) / n_target,
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _hashed(analyzer: str, ngrams: tuple[int, int]) -> HashingVectorizer:
    return HashingVectorizer(
        analyzer=analyzer,
        ngram_range=ngrams,
        n_features=HASHED_FEATURES,
        alternate_sign=False,
        lowercase=False,
    )


def _pipeline(seed: int, regularisation: float) -> Pipeline:
    features = ColumnTransformer(
        [
            ("target_chars", _hashed("char_wb", (1, 4)), TARGET),
            ("target_words", _hashed("word", (1, 2)), TARGET),
            (
                "pair",
                make_pipeline(FunctionTransformer(pair_features), StandardScaler()),
                [SOURCE, TARGET],
            ),
        ]
    )
    classifier = LogisticRegression(
        C=regularisation, solver="liblinear", max_iter=1000, random_state=seed
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def _as_pairs(sources: list[str], targets: list[str]) -> np.ndarray:
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    pairs = np.empty((len(sources), 2), dtype=object)
    pairs[:, SOURCE], pairs[:, TARGET] = sources, targets
    return pairs


@dataclass
class Detector:
    pipeline: Pipeline
    generator: str

    def p_human(self, sources: list[str], targets: list[str]) -> np.ndarray:
        """Probability that each (source, target) is a human translation."""
        if not sources:
            return np.empty(0)
        return self.pipeline.predict_proba(_as_pairs(sources, targets))[:, 1]


def _labelled(human: pl.DataFrame, generated: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    sources = human["source"].to_list() + generated["source"].to_list()
    targets = human["target"].to_list() + generated["target"].to_list()
    labels = np.r_[np.ones(human.height, dtype=int), np.zeros(generated.height, dtype=int)]
    return _as_pairs(sources, targets), labels


def train_detector(
    human: pl.DataFrame,
    generated: pl.DataFrame,
    seed: int,
    *,
    generator: str = "generated",
    regularisation: float = 4.0,
) -> Detector:
    """Fit the detector on human (label 1) and generated (label 0) pairs (columns source,
    target). `regularisation` is the logistic regression's C (larger: weaker penalty)."""
    if not human.height or not generated.height:
        raise ValueError(
            f"a detector needs both classes: {human.height} human, {generated.height} generated"
        )
    pairs, labels = _labelled(human, generated)
    pipeline = _pipeline(seed, regularisation).fit(pairs, labels)
    return Detector(pipeline, generator)


def evaluate_detector(
    detector: Detector, held_out_human: pl.DataFrame, held_out_generated: pl.DataFrame
) -> dict:
    """Accuracy (at P(human) 0.5) and ROC AUC on held-out pairs, with the counts."""
    pairs, labels = _labelled(held_out_human, held_out_generated)
    if len(set(labels)) < 2:
        raise ValueError("held-out data needs both human and generated pairs")
    p = detector.p_human(list(pairs[:, SOURCE]), list(pairs[:, TARGET]))
    return {
        "accuracy": float(accuracy_score(labels, p >= 0.5)),
        "roc_auc": float(roc_auc_score(labels, p)),
        "n": int(labels.size),
        "n_human": int(labels.sum()),
        "n_generated": int((labels == 0).sum()),
    }


def save_detector(detector: Detector, path: str | Path) -> None:
    """Pickle the detector: the same detector gives the same bytes."""
    _drop_identity_caches(detector.pipeline)
    with atomic_path(path) as tmp:
        joblib.dump(detector, tmp)


def _drop_identity_caches(pipeline: Pipeline) -> None:
    """A fitted vectorizer remembers the id() of its stop-word list, to skip checking it again;
    an object id differs from run to run, so it is left out of the file (the vectorizer checks
    the list again when it next needs to)."""
    for _, transformer, _ in pipeline.named_steps["features"].transformers_:
        vars(transformer).pop("_stop_words_id", None)


def load_detector(path: str | Path) -> Detector:
    """A detector written by save_detector (a pickle: load only files this workflow wrote)."""
    detector = joblib.load(path)
    if not isinstance(detector, Detector):
        raise ValueError(f"{path} holds a {type(detector).__name__}, not a Detector")
    return detector


def detector_data(
    pool: pl.DataFrame, synthetic: pl.DataFrame, generator: str, held_out: float, seed: int
) -> dict[str, pl.DataFrame]:
    """The detector pool split by source into train and held-out parts, each with its human and
    generated pairs: {"train_human", "train_generated", "held_out_human",
    "held_out_generated"}, columns id, source, target. `held_out` is the held-out share of
    sources; both parts keep at least one source."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a share between 0 and 1, got {held_out}")
    if pool.height < 2:
        raise ValueError(f"the detector pool needs at least 2 pairs, has {pool.height}")
    generated = generated_targets(pool, synthetic, generator, pool_name="detector")
    human = pool.select("id", "source", "target")
    n_held = min(max(round(held_out * pool.height), 1), pool.height - 1)
    # Its own stream: the split must not echo the order curricula draw from the same seed.
    order = np.random.default_rng([seed, pool.height, 2]).permutation(pool.height)
    parts = {"held_out": np.sort(order[:n_held]), "train": np.sort(order[n_held:])}
    return {
        f"{part}_{kind}": frame[rows]
        for part, rows in parts.items()
        for kind, frame in (("human", human), ("generated", generated))
    }
