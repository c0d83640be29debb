"""Error rate of generated targets (the study's M mechanisms).

The paper explains part of the loss from training on generated targets by their errors. Two
views of them:

- against the human reference: sentence chrF per pair, the share of pairs below a chrF
  threshold (`error_rate`), and corpus TER;
- without a reference: flags for the failures a generator makes that any reader would call
  errors (a copied source, an implausible length, a degenerate loop, an empty line).

The flags are heuristics, meant to count failure modes per generator, not to judge a single
pair: a source that is all names or numbers is rightly "copied", for instance.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

from sacrebleu.metrics import TER

from regurgitate.analysis.diversity import tokenize
from regurgitate.engine.metrics import sentence_chrf

FLAGS = ("copied_source", "implausible_length", "repeated_ngrams", "empty")


def _check_same_length(**named_lists: Sequence[str]) -> None:
    """Raise ValueError naming every list's length when they are not all equally long."""
    lengths = {name: len(values) for name, values in named_lists.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{length} {name}" for name, length in lengths.items())
        raise ValueError(f"the lists must be parallel but differ in length: {described}")


# --- against the reference ---------------------------------------------------------------------


def sentence_chrf_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """chrF (sacreBLEU, 0-100) of each hypothesis against its own reference."""
    _check_same_length(hypotheses=hypotheses, references=references)
    return sentence_chrf(list(hypotheses), list(references))


def _share_below(scores: Sequence[float], threshold: float) -> float:
    if not scores:
        raise ValueError("the error rate of no sentences is undefined")
    return sum(score < threshold for score in scores) / len(scores)


def corpus_ter(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus TER (sacreBLEU, in %; lower is better): {"score", "signature"}."""
    _check_same_length(hypotheses=hypotheses, references=references)
    if not hypotheses:
        raise ValueError("cannot compute TER over no sentences")
    ter = TER()
    result = ter.corpus_score(list(hypotheses), [list(references)])
    return {"score": float(result.score), "signature": str(ter.get_signature())}


# --- without a reference: one flag per row -----------------------------------------------------


def _letters_and_digits(text: str) -> str:
    """Lowercased text without punctuation, symbols or whitespace."""
    return "".join(
        char
        for char in text.lower()
        if not char.isspace() and unicodedata.category(char)[0] not in ("P", "S")
    )


def copied_source(
    sources: Sequence[str], targets: Sequence[str], max_chrf: float = 90.0
) -> list[bool]:
    """The target is the source left (almost) untranslated.

    Flagged when the two are equal once lowercased and stripped of punctuation and whitespace,
    or when the target's chrF against the source exceeds `max_chrf`: a generator that copies
    often changes a word or two, and between German and English a real translation shares
    far fewer character n-grams than that.
    """
    _check_same_length(sources=sources, targets=targets)
    similarity = sentence_chrf_scores(targets, sources)
    return [
        _letters_and_digits(source) == _letters_and_digits(target) or chrf > max_chrf
        for source, target, chrf in zip(sources, targets, similarity, strict=True)
    ]


def implausible_length(
    sources: Sequence[str], targets: Sequence[str], max_ratio: float = 3.0
) -> list[bool]:
    """The longer of source and target has more than `max_ratio` times the other's characters
    (a truncated or run-on translation). An empty side counts as one character."""
    _check_same_length(sources=sources, targets=targets)
    return [
        max(len(source), len(target)) / max(min(len(source), len(target)), 1) > max_ratio
        for source, target in zip(sources, targets, strict=True)
    ]


def repeated_ngrams(targets: Sequence[str], n: int = 3, max_repeats: int = 3) -> list[bool]:
    """Some token n-gram occurs more than `max_repeats` times in the target: the degenerate
    loop ("a man and a man and a man and ...") that decoders fall into. Tokens as in
    `regurgitate.diversity.tokenize`."""
    return [_most_repeated_ngram(tokenize(target), n) > max_repeats for target in targets]


def _most_repeated_ngram(tokens: list[str], n: int) -> int:
    ngrams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return max(ngrams.values(), default=0)


def empty(targets: Sequence[str]) -> list[bool]:
    """The target is blank once whitespace is stripped."""
    return [not target.strip() for target in targets]


# --- everything for one generator --------------------------------------------------------------


def flag_rows(sources: Sequence[str], targets: Sequence[str]) -> dict[str, list[bool]]:
    """Every reference-free flag of each row: {flag: [flagged?]}, in `FLAGS` order."""
    _check_same_length(sources=sources, targets=targets)
    return {
        "copied_source": copied_source(sources, targets),
        "implausible_length": implausible_length(sources, targets),
        "repeated_ngrams": repeated_ngrams(targets),
        "empty": empty(targets),
    }


def error_profile(
    sources: Sequence[str],
    targets: Sequence[str],
    references: Sequence[str],
    *,
    chrf_threshold: float,
) -> dict:
    """The error measures of one set of generated `targets` for `sources`, against the human
    `references`.

    Returns {"error_rate", "ter", "ter_signature", "mean_sentence_chrf",
    "flags": {flag: number of rows flagged}, "n", "sentence_chrf": [score per row]}.
    """
    _check_same_length(sources=sources, targets=targets, references=references)
    if not targets:
        raise ValueError("cannot profile the errors of no sentences")
    chrf_scores = sentence_chrf_scores(targets, references)
    ter = corpus_ter(targets, references)
    flags = flag_rows(sources, targets)
    return {
        "error_rate": _share_below(chrf_scores, chrf_threshold),
        "ter": ter["score"],
        "ter_signature": ter["signature"],
        "mean_sentence_chrf": sum(chrf_scores) / len(chrf_scores),
        "flags": {name: sum(flagged) for name, flagged in flags.items()},
        "n": len(targets),
        "sentence_chrf": chrf_scores,
    }
