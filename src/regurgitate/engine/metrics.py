"""Translation quality with sacreBLEU: corpus BLEU and chrF, with the signatures that say how.

Every score the study reports goes through here, so all runs use the same tokenisation and
settings, and each result carries the sacreBLEU signature that makes it reproducible.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def _check_parallel(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references differ in length: "
            f"{len(hypotheses)} hypotheses, {len(references)} references"
        )


def score(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF of `hypotheses` against one reference each.

    Returns {"bleu", "chrf", "bleu_signature", "chrf_signature", "n_sentences"}.
    Raises ValueError when the lists differ in length or are empty: a score over nothing, or
    over misaligned lines, would be a silent error in every table built on it.
    """
    _check_parallel(hypotheses, references)
    if not hypotheses:
        raise ValueError("cannot score an empty set of hypotheses")
    # Fresh metric objects per call: they carry state (the signature) and are cheap to build.
    bleu = BLEU()
    chrf = CHRF()
    # sacreBLEU takes references as a list of reference streams; we have one stream.
    reference_streams = [list(references)]
    return {
        "bleu": float(bleu.corpus_score(hypotheses, reference_streams).score),
        "chrf": float(chrf.corpus_score(hypotheses, reference_streams).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "n_sentences": len(hypotheses),
    }


def sentence_chrf(hypotheses: list[str], references: list[str]) -> list[float]:
    """chrF of each hypothesis against its own reference (per-pair quality, e.g. for ordering).

    chrF rather than sentence BLEU because BLEU is unstable on single sentences (one missing
    4-gram sends it to zero). Raises ValueError when the lists differ in length.
    """
    _check_parallel(hypotheses, references)
    chrf = CHRF()
    return [
        float(chrf.sentence_score(hyp, [ref]).score)
        for hyp, ref in zip(hypotheses, references, strict=True)
    ]
